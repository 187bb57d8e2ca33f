package natsauth

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/attempts"
	"github.com/quaycast/quaycast/cluster"
	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/eventtypes"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/tenants"
	"github.com/quaycast/quaycast/tokens"
)

var update = flag.Bool("update", false, "rewrite ../examples/nats-accounts.conf from ServerConfig")

// The accounts block in the examples (and quoted by the README) is ServerConfig's output, so a
// stream or bucket added later cannot leave it stale: regenerate with go test ./natsauth -update.
func TestServerConfigMatchesExample(t *testing.T) {
	const path = "../examples/nats-accounts.conf"
	got := ServerConfig("tos-rotterdam")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s is stale: run go test ./natsauth -update", path)
	}
}

// quaycast's own user may reach the JetStream API of its own streams and buckets only.
func TestGatewayPermissionsCoverEveryStreamAndNothingElse(t *testing.T) {
	p := GatewayPermissions()
	for _, s := range streamNames() {
		for _, want := range []string{"$JS.API.STREAM.*." + s, "$JS.API.CONSUMER.*.*." + s + ".>", "$JS.ACK." + s + ".>"} {
			if !slices.Contains(p.Publish.Allow, want) {
				t.Errorf("missing %s", want)
			}
		}
	}
	for _, b := range buckets {
		if !slices.Contains(p.Publish.Allow, "$KV."+b+".>") {
			t.Errorf("missing $KV.%s.>", b)
		}
	}
	for _, s := range p.Publish.Allow {
		if s == ">" || s == "$JS.API.>" || s == "$KV.>" || strings.HasPrefix(s, "$SYS") {
			t.Errorf("too wide: %s", s)
		}
	}
	if !slices.Equal(p.Subscribe.Allow, []string{"_INBOX.>"}) {
		t.Errorf("subscribe %v, want only _INBOX.>", p.Subscribe.Allow)
	}
}

// The inventory the permissions are made from names every stream and bucket the packages that
// keep records create, and nothing they do not (but the old marks bucket, only read to migrate it).
func TestInventory(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, js := natstest.ConnectJetStream(t, natstest.Start(t))
	if _, _, err := consumer.Setup(ctx, js, consumer.StreamOptions{MaxAge: time.Hour, Duplicates: time.Minute, MaxConsumers: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := consumer.NewMarks(ctx, js, time.Hour, time.Second, 1, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if err := attempts.Setup(ctx, js, attempts.StreamOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tokens.New(ctx, js, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := eventtypes.Open(ctx, js, 1, zerolog.Nop()); err != nil {
		t.Fatal(err)
	}
	if _, err := portal.Open(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := tenants.Open(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := NewPublishers(ctx, js, 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cluster.Setup(ctx, js, time.Second, 1); err != nil {
		t.Fatal(err)
	}
	if err := rollup.Setup(ctx, js, 1); err != nil {
		t.Fatal(err)
	}
	var created []string
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		created = append(created, name)
	}
	if err := names.Err(); err != nil {
		t.Fatal(err)
	}
	listed := streamNames()
	for _, name := range created {
		if !slices.Contains(listed, name) {
			t.Errorf("stream %s is created but not in the inventory: quaycast's NATS user may not use it", name)
		}
	}
	for _, name := range listed {
		if !slices.Contains(created, name) && name != "KV_"+consumer.LegacyMarksBucket {
			t.Errorf("%s is in the inventory but no package creates it", name)
		}
	}
}

func TestPublisherPermissions(t *testing.T) {
	tests := []struct {
		name         string
		sources      []string
		replies      bool
		wantPub      []string
		wantSubExtra []string
	}{
		{"one source", []string{"tos"}, false, []string{"evt.tos.>"}, nil},
		{"two sources with replies", []string{"tos", "tms-eu"}, true, []string{"evt.tos.>", "evt.tms-eu.>"}, []string{"quaycast.reply.tos.>", "quaycast.reply.tms-eu.>", "quaycast.sys.>"}},
		{"every source", []string{"*"}, false, []string{"evt.>"}, nil},
		{"every source with replies", []string{"*"}, true, []string{"evt.>"}, []string{"quaycast.reply.>", "quaycast.sys.>"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := PublisherPermissions(tc.sources, tc.replies)
			if !slices.Equal(p.Publish.Allow, tc.wantPub) {
				t.Errorf("publish %v, want %v", p.Publish.Allow, tc.wantPub)
			}
			if want := append([]string{"_INBOX.>"}, tc.wantSubExtra...); !slices.Equal(p.Subscribe.Allow, want) {
				t.Errorf("subscribe %v, want %v", p.Subscribe.Allow, want)
			}
		})
	}
}

func TestValidatePublisher(t *testing.T) {
	tests := []struct {
		name      string
		pubName   string
		sources   []string
		wantField string
	}{
		{"ok", "tos", []string{"tos-rotterdam"}, ""},
		{"all", "local", []string{"*"}, ""},
		{"no name", "", []string{"tos"}, "name"},
		{"long name", strings.Repeat("n", 129), []string{"tos"}, "name"},
		{"no sources", "tos", nil, "sources"},
		{"wildcard in a source", "tos", []string{"tos", "t>"}, "sources[1]"},
		{"dot in a source", "tos", []string{"tos.x"}, "sources[0]"},
		{"upper case", "tos", []string{"TOS"}, "sources[0]"},
		{"quaycast's own", "tos", []string{"tos", "quaycast"}, "sources[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePublisher(tc.pubName, tc.sources)
			got := ""
			if err != nil {
				got = strings.SplitN(err.Error(), ":", 2)[0]
			}
			if got != tc.wantField {
				t.Errorf("ValidatePublisher: %v, want field %q", err, tc.wantField)
			}
		})
	}
}

func TestParseCredential(t *testing.T) {
	id, secret, ok := kind.Parse("qcp_0123456789abcdef0123_c2VjcmV0")
	if !ok || id != "pub_0123456789abcdef0123" || secret != "c2VjcmV0" {
		t.Errorf("parse: %q %q %v", id, secret, ok)
	}
	for _, bad := range []string{"", "qcp_", "qcp_0123_x", "qct_0123456789abcdef0123_x", "qcp_0123456789abcdef0123_", "qci_x"} {
		if _, _, ok := kind.Parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
