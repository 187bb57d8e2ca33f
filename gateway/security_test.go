package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/tlstest"
	"github.com/quaycast/quaycast/internal/testlog"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
	"github.com/quaycast/quaycast/tokens"
)

// natsErrors collects the asynchronous errors of a connection (permission violations).
type natsErrors struct {
	mu   sync.Mutex
	errs []string
}

func (e *natsErrors) handler(_ *nats.Conn, _ *nats.Subscription, err error) {
	e.mu.Lock()
	e.errs = append(e.errs, err.Error())
	e.mu.Unlock()
}

// waitFor waits until a violation naming subject was reported.
func (e *natsErrors) wait(t *testing.T, subject string) {
	t.Helper()
	testwait.For(t, 10*time.Second, "a permissions violation for "+subject, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range e.errs {
			if strings.Contains(s, "Permissions Violation") && strings.Contains(s, subject) {
				return true
			}
		}
		return false
	})
}

// createPublisher makes a publisher credential through the API.
func createPublisher(t *testing.T, g *running, name string, sources []string, replies bool) (id, credential string) {
	t.Helper()
	var p struct{ ID, Credential string }
	if err := g.api.Do(t.Context(), "POST", "/v1/publishers", map[string]any{"name": name, "sources": sources, "replies": replies}, &p); err != nil {
		t.Fatalf("create publisher: %v", err)
	}
	return p.ID, p.Credential
}

// Nobody reaches the embedded NATS without a credential, loopback included.
func TestNATSRefusesClientsWithoutCredentials(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	for name, opts := range map[string][]nats.Option{
		"no credential":        nil,
		"unknown credential":   {nats.Token("qcp_00112233445566778899_c2VjcmV0")},
		"user and password":    {nats.UserInfo("quaycast", "quaycast")},
		"internal-like guess":  {nats.Token("qci_guess")},
		"credential as user":   {nats.UserInfo("qcp_00112233445566778899_c2VjcmV0", "")},
		"publisher id as user": {nats.UserInfo("pub_00112233445566778899", "c2VjcmV0")},
	} {
		if nc, err := nats.Connect(g.NATSURL(), opts...); err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("%s: %v, want an authorization violation", name, err)
		}
	}
}

// A publisher of source tos publishes its events and nothing else: not another source's, not a
// replay, not the KV buckets, not the JetStream API; and it sees none of quaycast's own traffic.
func TestPublisherMayOnlyPublishItsSource(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "*")
	_, cred := createPublisher(t, g, "tos-rotterdam", []string{"tos"}, false)

	// A second publisher listens on every inbox its account has: quaycast's requests and answers,
	// and the other publisher's acknowledgements, must never reach it.
	_, spyCred := createPublisher(t, g, "spy", []string{"spy"}, true)
	spy, err := nats.Connect(g.NATSURL(), nats.Token(spyCred))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	spied, err := spy.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := spy.Flush(); err != nil {
		t.Fatal(err)
	}

	var violations natsErrors
	nc, err := nats.Connect(g.NATSURL(), nats.Token(cred), nats.ErrorHandler(violations.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := t.Context()
	ack, err := js.Publish(ctx, "evt.tos.cargo_loaded", event("own-1", "cargo_loaded", "C1"), jetstream.WithMsgID("own-1"))
	if err != nil {
		t.Fatalf("publish its own source: %v", err)
	}
	rc.waitCount(t, 1)

	ijs := jsAs(t, g, natsauth.InternalFile)
	replay := "replay." + ep.ID + ".tos.cargo_loaded"
	forbidden := map[string][]byte{
		"evt.tms.shipment_booked": []byte(`{"id":"other-1","type":"shipment_booked","source":"tms","entity":"S1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`),
		replay:                    event("replayed-1", "cargo_loaded", "C1"),
		"$KV.quaycast_tokens.tok_00112233445566778899":                   []byte(`{"id":"tok_00112233445566778899","scopes":["endpoints:write"]}`),
		"$KV.quaycast_publishers.pub_00112233445566778899":               []byte(`{}`),
		"$JS.API.STREAM.DELETE." + consumer.EventsStream:                 nil,
		"$JS.API.STREAM.PURGE." + consumer.EventsStream:                  nil,
		"$JS.API.CONSUMER.DELETE." + consumer.EventsStream + "." + ep.ID: nil,
	}
	for subject, data := range forbidden {
		if err := nc.Publish(subject, data); err != nil {
			t.Fatalf("publish %s: %v", subject, err)
		}
		violations.wait(t, subject)
	}
	if _, err := nc.SubscribeSync(natsauth.RepliesExport); err != nil {
		t.Fatal(err)
	}
	violations.wait(t, "Subscription to \""+natsauth.RepliesExport)

	// Nothing changed: one event in the stream, the consumer and the buckets as they were.
	stream, err := ijs.Stream(ctx, consumer.EventsStream)
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.LastSeq != ack.Sequence {
		t.Errorf("events stream: last seq %d (%v), want %d: something else was stored", info.State.LastSeq, err, ack.Sequence)
	}
	if _, err := stream.Consumer(ctx, ep.ID); err != nil {
		t.Errorf("endpoint consumer: %v", err)
	}
	for bucket, key := range map[string]string{tokens.Bucket: "tok_00112233445566778899", natsauth.PublishersBucket: "pub_00112233445566778899"} {
		kv, err := ijs.KeyValue(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Get(ctx, key); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("%s/%s: %v, want not found", bucket, key, err)
		}
	}
	if ids := rc.ids(); len(ids) != 1 || ids[0] != "own-1" {
		t.Errorf("receiver got %v, want only own-1", ids)
	}

	// quaycast worked meanwhile (KV reads, consumer info, a delivery); the spy saw none of it.
	var list struct{ Endpoints []any }
	if err := g.api.Do(ctx, "GET", "/v1/endpoints", nil, &list); err != nil || len(list.Endpoints) != 1 {
		t.Fatalf("list endpoints: %v %v", list, err)
	}
	if m, err := spied.NextMsg(500 * time.Millisecond); err == nil {
		t.Errorf("a publisher saw a message on %s", m.Subject)
	}
}

// With replies granted, a publisher follows the replies to its own source's events only.
func TestPublisherFollowsRepliesOfItsSourceOnly(t *testing.T) {
	t.Parallel()
	g, rc, ep := startWithEndpoint(t, "*")
	rc.replyWith(`{"ack":true}`) // before any event is published
	_, tosCred := createPublisher(t, g, "tos", []string{"tos"}, true)
	_, tmsCred := createPublisher(t, g, "tms", []string{"tms"}, false)

	var violations natsErrors
	tos, err := nats.Connect(g.NATSURL(), nats.Token(tosCred), nats.ErrorHandler(violations.handler))
	if err != nil {
		t.Fatal(err)
	}
	defer tos.Close()
	replies, err := tos.SubscribeSync("quaycast.reply.tos.>")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tos.SubscribeSync("quaycast.reply.tms.>"); err != nil {
		t.Fatal(err)
	}
	violations.wait(t, `Subscription to "quaycast.reply.tms.>"`)
	if err := tos.Flush(); err != nil {
		t.Fatal(err)
	}

	tms, err := nats.Connect(g.NATSURL(), nats.Token(tmsCred))
	if err != nil {
		t.Fatal(err)
	}
	defer tms.Close()
	tmsJS, _ := jetstream.New(tms)
	if _, err := tmsJS.Publish(t.Context(), "evt.tms.shipment_booked", []byte(`{"id":"tms-1","type":"shipment_booked","source":"tms","entity":"S1","occurred_at":"2026-11-23T10:00:00Z","data":{}}`)); err != nil {
		t.Fatalf("tms publishes its own: %v", err)
	}
	rc.waitCount(t, 1)
	tosJS, _ := jetstream.New(tos)
	if _, err := tosJS.Publish(t.Context(), "evt.tos.cargo_loaded", event("tos-1", "cargo_loaded", "C1")); err != nil {
		t.Fatal(err)
	}
	m, err := replies.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("the reply to tos-1: %v", err)
	}
	if want := "quaycast.reply.tos." + ep.ID + ".cargo_loaded.C1"; m.Subject != want || m.Header.Get("Quaycast-Delivery-Id") != "tos-1" {
		t.Errorf("reply on %s (delivery %s), want %s for tos-1", m.Subject, m.Header.Get("Quaycast-Delivery-Id"), want)
	}
	if m, err := replies.NextMsg(300 * time.Millisecond); err == nil {
		t.Errorf("tos saw another reply: %s", m.Subject)
	}
}

// Whoever can write a bucket still cannot forge an API token or a publisher credential: records
// are bound with the gateways' secret key. (With NATS locked down nobody but quaycast can write
// them; this is the second wall.)
func TestForgedRecordsAreRefused(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = "admin-token-for-the-forgery-test"
	g := startGateway(t, cfg)
	g.api.Token = cfg.AdminToken
	js := jsAs(t, g, natsauth.InternalFile)
	ctx := t.Context()
	const secret = "chosen-by-the-attacker"
	sum := sha256.Sum256([]byte(secret))
	hash := hex.EncodeToString(sum[:])

	// A token record with every scope and a hash of the attacker's choice.
	tokenKV, err := js.KeyValue(ctx, tokens.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := json.Marshal(map[string]any{"id": "tok_00112233445566778899", "name": "x", "scopes": []string{"endpoints:read", "endpoints:write"}, "created_at": time.Now(), "hash": hash})
	if _, err := tokenKV.Put(ctx, "tok_00112233445566778899", forged); err != nil {
		t.Fatal(err)
	}
	attacker := asToken(g, "qct_00112233445566778899_"+secret)
	var apiErr *gateway.APIError
	if err := attacker.Do(ctx, "GET", "/v1/endpoints", nil, nil); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized {
		t.Errorf("GET /v1/endpoints with a forged token: %v, want 401", err)
	}

	// A real token whose record is edited to hold more scopes stops working altogether.
	var real struct{ ID, Token string }
	if err := g.api.Do(ctx, "POST", "/v1/tokens", map[string]any{"name": "reader", "scopes": []string{"endpoints:read"}}, &real); err != nil {
		t.Fatal(err)
	}
	entry, err := tokenKV.Get(ctx, real.ID)
	if err != nil {
		t.Fatal(err)
	}
	widened := bytes.Replace(entry.Value(), []byte(`["endpoints:read"]`), []byte(`["endpoints:read","endpoints:delete"]`), 1)
	if _, err := tokenKV.Put(ctx, real.ID, widened); err != nil {
		t.Fatal(err)
	}
	edited := asToken(g, real.Token)
	testwait.For(t, 10*time.Second, "the edited token refused", func() bool { // checks are cached 5 s
		err := edited.Do(ctx, "GET", "/v1/endpoints", nil, nil)
		return errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized
	})

	// A publisher record of the attacker's making is never loaded into the server.
	pubs, err := js.KeyValue(ctx, natsauth.PublishersBucket)
	if err != nil {
		t.Fatal(err)
	}
	forgedPub, _ := json.Marshal(map[string]any{"id": "pub_00112233445566778899", "name": "x", "sources": []string{"*"}, "replies": true, "created_at": time.Now(), "hash": hash})
	if _, err := pubs.Put(ctx, "pub_00112233445566778899", forgedPub); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Publishers []struct{ ID, Error string }
	}
	testwait.For(t, 10*time.Second, "the forged publisher listed with an error", func() bool {
		_ = g.api.Do(ctx, "GET", "/v1/publishers", nil, &list)
		for _, p := range list.Publishers {
			if p.ID == "pub_00112233445566778899" && p.Error != "" {
				return true
			}
		}
		return false
	})
	if c, err := nats.Connect(g.NATSURL(), nats.Token("qcp_00112233445566778899_"+secret)); err == nil {
		c.Close()
		t.Error("connected with a forged publisher record")
	}
}

// A revoked publisher is refused from then on: its open connection is closed at once, so its
// next publish fails and stores nothing.
func TestRevokedPublisherRefusedAtNextPublish(t *testing.T) {
	t.Parallel()
	g, rc, _ := startWithEndpoint(t, "*")
	id, cred := createPublisher(t, g, "tos", []string{"tos"}, false)
	disconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(g.NATSURL(), nats.Token(cred), nats.ReconnectWait(50*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) {
			select {
			case disconnected <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(t.Context(), "evt.tos.cargo_loaded", event("before", "cargo_loaded", "C1")); err != nil {
		t.Fatal(err)
	}
	rc.waitCount(t, 1)
	if err := g.api.Do(t.Context(), "DELETE", "/v1/publishers/"+id, nil, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "evt.tos.cargo_loaded", event("after", "cargo_loaded", "C1")); err == nil {
		t.Fatal("a revoked publisher's next publish was acknowledged")
	}
	select {
	case <-disconnected:
	case <-time.After(10 * time.Second):
		t.Error("the revoked publisher's connection was not closed")
	}
	var list struct{ Publishers []struct{ ID string } }
	if err := g.api.Do(t.Context(), "GET", "/v1/publishers", nil, &list); err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Publishers {
		if p.ID == id {
			t.Errorf("revoked publisher %s still listed", id)
		}
	}
	if c, err := nats.Connect(g.NATSURL(), nats.Token(cred)); err == nil {
		c.Close()
		t.Error("a revoked credential connected")
	}
	// A later event of the same entity, published by another publisher, arrives after anything
	// the revoked one could have stored: when it is there, nothing else may be.
	publishNATS(t, g, event("marker", "cargo_loaded", "C1"))
	rc.waitCount(t, 2)
	if ids := rc.ids(); len(ids) != 2 || ids[0] != "before" || ids[1] != "marker" {
		t.Errorf("receiver got %v, want [before marker]: the revoked publisher stored an event", ids)
	}
}

// TLS on both listeners: a client with the CA connects and publishes, a plain one is refused;
// the API answers over HTTPS. NATS beyond loopback without TLS starts with a warning.
func TestTLSListenersAndClearTextWarning(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := tlstest.Write(t, dir)
	cfg := testConfig(t)
	cfg.NATSTLSCert, cfg.NATSTLSKey = cert, key
	cfg.TLSCert, cfg.TLSKey = cert, key
	var logs testlog.Buffer
	g := startGatewayWriting(t, cfg, io.MultiWriter(&logs, zerolog.NewTestWriter(t)))
	if !strings.HasPrefix(g.APIURL(), "https://") {
		t.Fatalf("API URL %s, want https", g.APIURL())
	}
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(caPEM)
	g.api.HTTP = &http.Client{Timeout: 10 * time.Second, Transport: checkedTransport{t: t, next: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	rc := newReceiver(t)
	g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	if resp, err := http.Get(strings.Replace(g.APIURL(), "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode/100 == 2 {
			t.Error("the API answered plain HTTP")
		}
	}

	_, cred := createPublisher(t, g, "tos", []string{"tos"}, false)
	addr := strings.TrimPrefix(strings.TrimPrefix(g.NATSURL(), "tls://"), "nats://")
	if nc, err := nats.Connect("nats://"+addr, nats.Token(cred)); err == nil {
		nc.Close()
		t.Error("a client without TLS connected to the TLS listener")
	}
	nc, err := nats.Connect("tls://"+addr, nats.Token(cred), nats.RootCAs(ca))
	if err != nil {
		t.Fatalf("a client with the CA: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(t.Context(), "evt.tos.cargo_loaded", event("tls-1", "cargo_loaded", "C1")); err != nil {
		t.Fatal(err)
	}
	rc.waitCount(t, 1)
	if strings.Contains(logs.String(), "cross the network in clear") {
		t.Error("warned about clear text although NATS has TLS")
	}

	clear := testConfig(t)
	clear.NATSListen = "0.0.0.0:0" // beyond loopback; the test only connects over loopback
	var clearLogs testlog.Buffer
	startGatewayWriting(t, clear, &clearLogs)
	if !strings.Contains(clearLogs.String(), "cross the network in clear") {
		t.Errorf("no clear-text warning for --nats-listen 0.0.0.0 without TLS; logs:\n%s", clearLogs.String())
	}
}

// After the quickstart — an endpoint created and rotated, an event delivered — the data dir holds
// no endpoint secret, and the credential files are the owner's only. The logs hold no credential.
func TestDataDirAndLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.AdminToken = "admin-token-that-must-not-be-logged"
	var logs testlog.Buffer
	g := startGatewayWriting(t, cfg, &logs)
	g.api.Token = cfg.AdminToken
	rc := newReceiver(t)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"group:gate", "cargo_loaded"}, "headers": map[string]string{"X-Api-Token": "custom-header-credential"}})
	var rotated endpoint
	if err := g.api.Do(t.Context(), "POST", "/v1/endpoints/"+ep.ID+"/secret/rotate", map[string]any{}, &rotated); err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	if err := g.api.Do(t.Context(), "POST", "/v1/tokens", map[string]any{"name": "r", "scopes": []string{"endpoints:read"}}, &tok); err != nil {
		t.Fatal(err)
	}
	pubID, cred := createPublisher(t, g, "tos", []string{"tos"}, false)
	g.waitReady(t)
	publishNATS(t, g, event("qs-1", "cargo_gated_in", "MSCU1234567"))
	rc.waitCount(t, 1)
	if c, err := nats.Connect(g.NATSURL(), nats.Token(cred+"x")); err == nil { // a failed attempt is logged by the server
		c.Close()
	}
	if err := g.api.Do(t.Context(), "DELETE", "/v1/publishers/"+pubID, nil, nil); err != nil {
		t.Fatal(err)
	}
	internal, err := os.ReadFile(natsauth.Path(cfg.DataDir, natsauth.InternalFile))
	if err != nil {
		t.Fatal(err)
	}
	local, err := os.ReadFile(natsauth.Path(cfg.DataDir, natsauth.PublisherFile))
	if err != nil {
		t.Fatal(err)
	}
	g.Stop(t)

	secrets := []string{ep.Secret, strings.TrimPrefix(ep.Secret, "whsec_"), rotated.Secret, strings.TrimPrefix(rotated.Secret, "whsec_")}
	err = filepath.WalkDir(cfg.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("whsec_")) {
			t.Errorf("%s holds whsec_ bytes", path)
		}
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds an endpoint secret", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{natsauth.InternalFile, natsauth.PublisherFile, natsauth.KeyFile} {
		info, err := os.Stat(natsauth.Path(cfg.DataDir, f))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, info.Mode().Perm())
		}
	}
	if info, err := os.Stat(filepath.Join(cfg.DataDir, natsauth.Dir)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("auth dir: %v; want 0700", err)
	}

	out := logs.String()
	for name, s := range map[string]string{
		"admin token": cfg.AdminToken, "API token": tok.Token, "publisher credential": cred,
		"internal credential": strings.TrimSpace(string(internal)), "local publisher credential": strings.TrimSpace(string(local)),
		"endpoint secret": strings.TrimPrefix(ep.Secret, "whsec_"), "rotated secret": strings.TrimPrefix(rotated.Secret, "whsec_"),
		"custom header credential": "custom-header-credential",
	} {
		if strings.Contains(out, s) {
			t.Errorf("the logs hold the %s", name)
		}
	}
	if !strings.Contains(out, "publisher revoked") {
		t.Error("the logs do not show the revocation (were the logs captured?)")
	}
}
