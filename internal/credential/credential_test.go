package credential_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/internal/credential"
	"github.com/quaycast/quaycast/internal/fielderr"
)

var errMissing = errors.New("thing not found")

var kind = credential.Kind{
	Noun: "thing", IDPrefix: "thg_", Prefix: "qcx_", NotFound: errMissing,
	Bucket: "test_things", Description: "things of a test",
}

// A minted credential parses back to its id and a secret that matches the stored hash, and
// nothing of the secret is in the hash or the id.
func TestMintParseMatch(t *testing.T) {
	t.Parallel()
	id, presented, hash := kind.Mint()
	if !kind.ValidID(id) {
		t.Fatalf("minted id %q is not valid", id)
	}
	got, secret, ok := kind.Parse(presented)
	if !ok || got != id {
		t.Fatalf("Parse(%q) = %q, %v; want %q", presented, got, ok, id)
	}
	if !credential.Matches(secret, hash) || credential.Matches(secret+"x", hash) {
		t.Errorf("Matches: the secret must match its hash, and only it")
	}
	if strings.Contains(hash, secret) || strings.Contains(id, secret) {
		t.Errorf("secret %q shows in id %q or hash %q", secret, id, hash)
	}
	if _, again, _ := kind.Mint(); again == presented {
		t.Errorf("two mints gave the same credential")
	}
}

func TestParseRefusesOtherForms(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "qcx_", "qcx_0123_x", "qct_0123456789abcdef0123_x", "qcx_0123456789abcdef0123_", "qcx_0123456789abcdef0123"} {
		if _, _, ok := kind.Parse(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestValidID(t *testing.T) {
	t.Parallel()
	if id := "thg_0123456789abcdef0123"; !kind.ValidID(id) {
		t.Errorf("%q refused", id)
	}
	for _, bad := range []string{"", "thg_0123456789ABCDEF0123", "thg_0123456789abcdef012", "tok_0123456789abcdef0123", "thg_0123456789abcdef012z"} {
		if kind.ValidID(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A name is for people: required, and at most 128 bytes; the error names the field.
func TestCheckName(t *testing.T) {
	t.Parallel()
	if err := credential.CheckName(strings.Repeat("n", 128)); err != nil {
		t.Errorf("128 bytes refused: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("n", 129)} {
		var fe *fielderr.Error
		if err := credential.CheckName(bad); !errors.As(err, &fe) || fe.Field != "name" {
			t.Errorf("CheckName of %d bytes = %v, want an error naming name", len(bad), err)
		}
	}
}

type thing struct {
	ID        string    `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	Bad       bool      `json:"bad,omitempty"` // decode refuses it
}

func decodeThing(b []byte) (*thing, error) {
	var th thing
	if err := json.Unmarshal(b, &th); err != nil {
		return nil, err
	}
	if th.Bad {
		return nil, errors.New("bad thing")
	}
	return &th, nil
}

// The bucket lists what decode accepts, oldest first; reads and revokes of an unknown id, or of
// one that could not be an id, are the kind's NotFound.
func TestBucket(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, js := natstest.ConnectJetStream(t, natstest.Start(t))
	b, err := credential.Open(ctx, js, kind, 1, decodeThing, func(th *thing) time.Time { return th.CreatedAt })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var ids []string
	for i, age := range []time.Duration{time.Minute, 3 * time.Minute, 2 * time.Minute} {
		id, _, _ := kind.Mint()
		ids = append(ids, id)
		if err := b.Create(ctx, id, &thing{ID: id, CreatedAt: now.Add(-age), Bad: i == 2}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Create(ctx, ids[0], &thing{ID: ids[0]}); err == nil {
		t.Errorf("Create over an existing id succeeded")
	}
	list, err := b.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(list))
	for i, th := range list {
		got[i] = th.ID
	}
	if want := []string{ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v (oldest first, the bad one left out)", got, want)
	}
	if th, err := b.Get(ctx, ids[1]); err != nil || th.ID != ids[1] {
		t.Errorf("Get = %+v, %v", th, err)
	}
	if err := b.Revoke(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ids[1], "thg_" + strings.Repeat("0", 20), "thg_*", "nope"} {
		if err := b.Revoke(ctx, id); !errors.Is(err, errMissing) {
			t.Errorf("Revoke(%q) = %v, want the kind's NotFound", id, err)
		}
	}
	if _, err := b.Get(ctx, ids[1]); !errors.Is(err, errMissing) {
		t.Errorf("Get of a revoked id = %v, want the kind's NotFound", err)
	}
}
