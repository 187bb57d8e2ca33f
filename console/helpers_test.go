package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/natsauth"
)

const adminToken = "console-admin-token-0123456789"

// rig is a gateway for a test, its API client, and a receiver.
type rig struct {
	g   *gatewaytest.Gateway
	cfg config.Config
	api *gateway.Client
	rcv *receiver
}

// start runs a gateway with the embedded NATS (access control when admin is set) and a receiver.
func start(t *testing.T, admin string) *rig {
	t.Helper()
	return startWith(t, admin, nil)
}

// startWith is start with the config changed by edit (nil: not).
func startWith(t *testing.T, admin string, edit func(*config.Config)) *rig {
	t.Helper()
	cfg := gatewaytest.Config(t)
	cfg.AdminToken = admin
	cfg.RetrySchedule = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}
	cfg.MaxAttempts = 2
	cfg.ShutdownTimeout = 5 * time.Second
	if edit != nil {
		edit(&cfg)
	}
	g := gatewaytest.Start(t, cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	api := gateway.NewClient(g.APIURL())
	api.Token = admin
	return &rig{g: g, cfg: cfg, api: api, rcv: newReceiver(t)}
}

// jetStream connects to the gateway's embedded NATS as quaycast itself.
func (r *rig) jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	b, err := os.ReadFile(natsauth.Path(r.cfg.DataDir, natsauth.InternalFile))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(r.g.NATSURL(), nats.Token(strings.TrimSpace(string(b))))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func (r *rig) addEndpoint(t *testing.T, body map[string]any) gatewaytest.Endpoint {
	t.Helper()
	return gatewaytest.AddEndpoint(t, r.api, body)
}

var published atomic.Int64

// publish stores one event through the ingest API and returns its id.
func (r *rig) publish(t *testing.T, typ, entity string) string {
	t.Helper()
	id := fmt.Sprintf("ev-%d-%d", time.Now().UnixNano(), published.Add(1))
	ev := map[string]any{"id": id, "type": typ, "source": "tos", "entity": entity, "occurred_at": time.Now().UTC().Format(time.RFC3339), "data": map[string]any{"n": 1}}
	if err := r.api.Do(t.Context(), "POST", "/v1/events", ev, nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	return id
}

// receiver records what it is sent and answers with its current status.
type receiver struct {
	*httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []*http.Request
	bodies [][]byte
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.status.Store(200)
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, r)
		rc.bodies = append(rc.bodies, b)
		rc.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(rc.status.Load()))
		_, _ = w.Write([]byte(`{"ack":true}`))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.got)
}

// browser is a plain HTTP client of the console with a cookie jar: forms posted as a browser
// of the same origin posts them.
type browser struct {
	t      *testing.T
	base   string
	client *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: base, client: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// get fetches a page and returns its status and body.
func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	resp, err := b.client.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

// csrf is the CSRF token a page of the console carries.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

// post submits a form with the given Origin ("" for none) and returns the status, the redirect
// target and the body.
func (b *browser) post(path string, form url.Values, origin string) (int, string, string) {
	b.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "POST", b.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}
