package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/natsauth"
)

// binary is the quaycast binary built once for this package's tests; natsServer is a nats-server
// built from the module we embed, for tests that run NATS as a process of its own.
var binary, natsServer string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quaycast-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "quaycast")
	// Without the race detector unless asked: with both cores busy these tests took ten minutes
	// built with it (go test's default limit for a package), six and a half without. The code the
	// binary runs is raced in process by the other packages' tests (gatewaytest, consumer, cluster).
	flags := []string{"build", "-o", binary}
	if os.Getenv("QUAYCAST_RACE_BINARY") == "1" {
		flags = append(flags, "-race")
	}
	build := exec.Command("go", append(flags, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build quaycast:", err)
		os.Exit(1)
	}
	natsServer = filepath.Join(dir, "nats-server")
	build = exec.Command("go", "build", "-o", natsServer, "github.com/nats-io/nats-server/v2")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build nats-server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a quaycast serve process.
type proc struct {
	cmd     *exec.Cmd
	api     string
	nats    string
	dataDir string
	exited  chan struct{}
	mu      sync.Mutex
	logs    strings.Builder
	waitErr error
}

// serve starts `quaycast serve` with args and waits until it logged that it started.
func serve(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"serve", "--log-format", "json", "--listen", "127.0.0.1:0", "--allow-target", "127.0.0.1"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	for i, a := range args {
		if a == "--data-dir" && i+1 < len(args) {
			p.dataDir = args[i+1]
		}
	}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.logs.WriteString(line + "\n")
			p.mu.Unlock()
			var l struct{ Message, API, NATS string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "quaycast started" {
				p.mu.Lock()
				p.api, p.nats = l.API, l.NATS
				p.mu.Unlock()
				once.Do(func() { close(started) })
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("quaycast logs:\n%s", p.output())
		}
	})
	select {
	case <-started:
	case <-p.exited:
		t.Fatalf("quaycast exited at start: %v\n%s", p.waitErr, p.output())
	case <-time.After(60 * time.Second):
		t.Fatalf("quaycast did not start within 60s\n%s", p.output())
	}
	return p
}

// as is the NATS credential in the gateway's data dir: natsauth.InternalFile (quaycast's own)
// or natsauth.PublisherFile (the local publisher).
func (p *proc) as(t *testing.T, file string) nats.Option {
	t.Helper()
	b, err := os.ReadFile(natsauth.Path(p.dataDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return nats.Token(strings.TrimSpace(string(b)))
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// signal sends sig and waits for the process to exit.
func (p *proc) signal(t *testing.T, sig syscall.Signal, within time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(within):
		t.Fatalf("quaycast still running %s after %v", within, sig)
		return nil
	}
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("quaycast %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// A user's session with the real binary: serve, add an endpoint with the CLI, publish with the CLI,
// see the signed delivery, stop with SIGTERM, start again on the same data dir, find the endpoint.
func TestServeCLIAndGracefulStop(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 10)
	bodies := make(chan []byte, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer recv.Close()

	dataDir := t.TempDir()
	p := serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	out := run(t, "endpoints", "add", "--api", p.api, "--url", recv.URL, "--types", "cargo_gated_in,group:hold", "--header", "X-Tenant=acme")
	var ep struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(out), &ep); err != nil || ep.Secret == "" {
		t.Fatalf("endpoints add printed %q", out)
	}
	if list := run(t, "endpoints", "list", "--api", p.api); !strings.Contains(list, ep.ID) || strings.Contains(list, ep.Secret) {
		t.Errorf("endpoints list: %q", list)
	}
	waitReady(t, p.api)
	run(t, "publish", "--nats-url", p.nats, "--data-dir", dataDir, "--type", "cargo_gated_in", "--entity", "MSCU1234567", "--id", "cli-1", "--data", `{"gate":"G3"}`)

	select {
	case r := <-got:
		body := <-bodies
		if r.Header.Get("webhook-id") != "cli-1" || r.Header.Get("X-Tenant") != "acme" {
			t.Errorf("headers %v", r.Header)
		}
		if err := (signature.Verifier{}).Verify(r.Header, body, ep.Secret); err != nil {
			t.Errorf("signature: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery within 30s")
	}

	if out := run(t, "endpoints", "test", "--api", p.api, ep.ID, "--type", "hold_applied"); !strings.Contains(out, `"outcome": "delivered"`) {
		t.Errorf("endpoints test printed %s", out)
	}
	select {
	case r := <-got:
		<-bodies
		if r.Header.Get("Quaycast-Event-Type") != "hold_applied" {
			t.Errorf("test send headers %v", r.Header)
		}
	case <-time.After(10 * time.Second):
		t.Error("test send did not reach the receiver")
	}

	if err := p.signal(t, syscall.SIGTERM, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0", err)
	}
	if logs := p.output(); !strings.Contains(logs, "embedded NATS server stopped") {
		t.Errorf("shutdown did not stop the embedded server in order:\n%s", logs)
	}

	p2 := serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	if out := run(t, "endpoints", "get", "--api", p2.api, ep.ID); !strings.Contains(out, `"X-Tenant": "acme"`) {
		t.Errorf("after restart the endpoint is %q", out)
	}
	if err := p2.signal(t, syscall.SIGINT, 30*time.Second); err != nil {
		t.Errorf("exit after SIGINT: %v, want 0", err)
	}
}

func TestConfigErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	out, err := exec.Command(binary, "serve", "--listen", "nonsense", "--data-dir", t.TempDir()).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "--listen") {
		t.Errorf("bad --listen: exit %v, output %q; want exit 2 naming --listen", err, out)
	}
}

func waitReady(t *testing.T, api string) {
	t.Helper()
	c := gateway.NewClient(api)
	testwait.For(t, 30*time.Second, "readyz", func() bool { return c.Do(context.Background(), "GET", "/readyz", nil, nil) == nil })
}

// Dead letters from the CLI: a refused event is listed, replayed once the receiver accepts it,
// and purge empties the list; then a redeliver sends the event once more, marked as such.
func TestDeadLettersCLI(t *testing.T) {
	t.Parallel()
	var refuse atomic.Bool
	refuse.Store(true)
	got := make(chan string, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refuse.Load() {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		got <- strings.TrimSpace(r.Header.Get("webhook-id") + " " + r.Header.Get(gateway.HeaderRedelivery))
	}))
	defer recv.Close()
	dataDir := t.TempDir()
	p := serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	var ep struct{ ID string }
	if err := json.Unmarshal([]byte(run(t, "endpoints", "add", "--api", p.api, "--url", recv.URL, "--types", "*")), &ep); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.api)
	run(t, "publish", "--nats-url", p.nats, "--data-dir", dataDir, "--type", "cargo_loaded", "--entity", "E1", "--id", "dl-1")

	testwait.For(t, 30*time.Second, "dl-1 dead-lettered", func() bool {
		return strings.Contains(run(t, "dead-letters", "list", "--api", p.api, ep.ID), `"event_id": "dl-1"`)
	})
	refuse.Store(false)
	if out := run(t, "dead-letters", "replay", "--api", p.api, ep.ID, "dl-1"); !strings.Contains(out, `"replayed": 1`) {
		t.Errorf("replay printed %q", out)
	}
	select {
	case id := <-got:
		if id != "dl-1" {
			t.Errorf("replayed delivery has webhook-id %q", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("replayed event not delivered within 30s")
	}
	if out := run(t, "dead-letters", "list", "--api", p.api, ep.ID); strings.Contains(out, "dl-1") {
		t.Errorf("dl-1 still listed after its replay: %s", out)
	}
	if out := run(t, "dead-letters", "purge", "--api", p.api, ep.ID); !strings.Contains(out, "purged") {
		t.Errorf("purge printed %q", out)
	}
	if out := run(t, "endpoints", "redeliver", "--api", p.api, "--since-seq", "1", ep.ID); !strings.Contains(out, `"redelivered": 1`) {
		t.Errorf("redeliver printed %q", out)
	}
	select {
	case got := <-got:
		if got != "dl-1 true" {
			t.Errorf("redelivered: webhook-id and %s %q, want \"dl-1 true\"", gateway.HeaderRedelivery, got)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("redelivered event not delivered within 30s")
	}
}

// A receiver saves a delivery as a raw HTTP request; `quaycast verify` says it is valid, and says
// what failed for a tampered copy.
func TestVerifySavedRequest(t *testing.T) {
	t.Parallel()
	saved := make(chan []byte, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dump, err := httputil.DumpRequest(r, true)
		if err == nil {
			saved <- dump
		}
	}))
	defer recv.Close()
	dataDir := t.TempDir()
	p := serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	var std, hub struct{ ID, Secret string }
	_ = json.Unmarshal([]byte(run(t, "endpoints", "add", "--api", p.api, "--url", recv.URL, "--types", "cargo_loaded")), &std)
	_ = json.Unmarshal([]byte(run(t, "endpoints", "add", "--api", p.api, "--url", recv.URL, "--types", "cargo_loaded", "--profile", "hub", "--secret", "It's a Secret to Everybody")), &hub)
	waitReady(t, p.api)
	run(t, "publish", "--nats-url", p.nats, "--data-dir", dataDir, "--type", "cargo_loaded", "--entity", "E1", "--id", "v-1", "--data", `{"vessel":"MAERSK KOLKATA"}`)

	dir := t.TempDir()
	for range 2 {
		var dump []byte
		select {
		case dump = <-saved:
		case <-time.After(30 * time.Second):
			t.Fatal("no delivery within 30s")
		}
		args, secret := []string{"--profile", "standard"}, std.Secret
		if bytes.Contains(dump, []byte("X-Hub-Signature-256")) {
			args, secret = []string{"--profile", "hub"}, hub.Secret
		}
		file := filepath.Join(dir, "request")
		if err := os.WriteFile(file, dump, 0o600); err != nil {
			t.Fatal(err)
		}
		if out := run(t, append([]string{"verify", "--request", file, "--secret", secret}, args...)...); !strings.HasPrefix(out, "valid") {
			t.Errorf("%v: %s", args, out)
		}
		tampered := bytes.Replace(dump, []byte("KOLKATA"), []byte("KOLKATB"), 1)
		if err := os.WriteFile(file, tampered, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(binary, append([]string{"verify", "--request", file, "--secret", secret}, args...)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "signature_mismatch") {
			t.Errorf("%v tampered: err %v, output %s; want a failure naming signature_mismatch", args, err, out)
		}
	}
}

// With an admin token the API needs tokens; the CLI makes, uses and revokes them, and says what it
// removed (a token, a publisher, an endpoint, a tenant).
func TestTokensCLI(t *testing.T) {
	t.Parallel()
	const admin = "admin-token-0123456789"
	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--admin-token", admin)
	out, err := exec.Command(binary, "endpoints", "list", "--api", p.api).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("without a token: %v %s, want a 401", err, out)
	}
	var tok struct{ ID, Token string }
	if err := json.Unmarshal([]byte(run(t, "tokens", "create", "--api", p.api, "--token", admin, "--name", "dashboard", "--scopes", "endpoints:read")), &tok); err != nil || tok.Token == "" {
		t.Fatalf("tokens create: %v %+v", err, tok)
	}
	if out := run(t, "endpoints", "list", "--api", p.api, "--token", tok.Token); !strings.Contains(out, "ID") {
		t.Errorf("list with a read token: %s", out)
	}
	out, err = exec.Command(binary, "endpoints", "add", "--api", p.api, "--token", tok.Token, "--url", "http://127.0.0.1:9/", "--types", "*").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "403") {
		t.Errorf("add with a read token: %v %s, want a 403", err, out)
	}
	if list := run(t, "tokens", "list", "--api", p.api, "--token", admin); !strings.Contains(list, tok.ID) || strings.Contains(list, tok.Token) {
		t.Errorf("tokens list: %s", list)
	}
	if out := run(t, "tokens", "revoke", "--api", p.api, "--token", admin, tok.ID); out != "revoked "+tok.ID+"\n" {
		t.Errorf("tokens revoke said %q", out)
	}
	out, err = exec.Command(binary, "endpoints", "list", "--api", p.api, "--token", tok.Token).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "401") {
		t.Errorf("revoked token: %v %s, want a 401", err, out)
	}

	// What the CLI removes, it names once the API has removed it.
	var pub, ep struct{ ID string }
	if err := json.Unmarshal([]byte(run(t, "publishers", "add", "--api", p.api, "--token", admin, "--source", "tos")), &pub); err != nil || pub.ID == "" {
		t.Fatalf("publishers add: %v %+v", err, pub)
	}
	if err := json.Unmarshal([]byte(run(t, "endpoints", "add", "--api", p.api, "--token", admin, "--url", "http://127.0.0.1:9/", "--types", "*")), &ep); err != nil || ep.ID == "" {
		t.Fatalf("endpoints add: %v %+v", err, ep)
	}
	run(t, "tenants", "create", "--api", p.api, "--token", admin, "--id", "maersk", "--name", "Maersk Line")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"publishers", "revoke", pub.ID}, "revoked " + pub.ID},
		{[]string{"endpoints", "rm", ep.ID}, "deleted " + ep.ID},
		{[]string{"tenants", "rm", "maersk"}, "deleted maersk"},
	} {
		if out := run(t, append(tc.args, "--api", p.api, "--token", admin)...); out != tc.want+"\n" {
			t.Errorf("%v said %q, want %q", tc.args, out, tc.want)
		}
	}
	if list := run(t, "tenants", "list", "--api", p.api, "--token", admin); strings.Contains(list, "maersk") {
		t.Errorf("tenants list after rm: %s", list)
	}
}
