package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/internal/testtool"
	"github.com/quaycast/quaycast/subjects"
)

// natsjsDir is the Node.js publisher example, from this package's folder.
var natsjsDir = filepath.Join("..", "..", "examples", "natsjs")

// The Node.js example an upstream system copies, run with node against a gateway: with its
// publisher credential it publishes an event that a receiver gets byte for byte and follows the
// receiver's reply; a wrong credential and another source's subject are refused.
func TestNodePublisherWithCredential(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err == nil {
		err = installNatsJS()
	}
	if err != nil {
		testtool.Missing(t, "needs node and npm (apt-get install nodejs npm): "+err.Error())
	}

	type delivery struct {
		id   string
		body []byte
	}
	got := make(chan delivery, 10)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Get("webhook-id"), b}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ack":true}`))
	}))
	defer recv.Close()

	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0")
	api := gateway.NewClient(p.api)
	ctx := context.Background()
	var ep struct{ ID string }
	if err := api.Do(ctx, "POST", "/v1/endpoints", map[string]any{"url": recv.URL, "event_types": []string{"cargo_loaded"}}, &ep); err != nil {
		t.Fatal(err)
	}
	var pub struct{ ID, Credential string }
	if err := api.Do(ctx, "POST", "/v1/publishers", map[string]any{"name": "tos", "sources": []string{"tos"}, "replies": true}, &pub); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pub.Credential, "qcp_") {
		t.Fatalf("publisher created with credential %q", pub.Credential)
	}
	waitReady(t, p.api)

	// publish runs the example; its own timeout (TIMEOUT_MS) ends every wait, the context only a hang.
	publish := func(cred, timeoutMS string, follow bool, args ...string) (stdout, stderr string, err error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, append([]string{"publish.mjs"}, args...)...)
		cmd.Dir = natsjsDir
		cmd.Env = append(os.Environ(), "NATS_URL="+p.nats, "QUAYCAST_NATS_CREDENTIAL="+cred, "TIMEOUT_MS="+timeoutMS, "FOLLOW_REPLIES=")
		if follow {
			cmd.Env = append(cmd.Env, "FOLLOW_REPLIES=1")
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err = cmd.Run()
		t.Logf("node publish.mjs %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out.String(), errOut.String())
		return out.String(), errOut.String(), err
	}
	failed := func(err error) bool {
		var ee *exec.ExitError
		return errors.As(err, &ee) && ee.ExitCode() > 0
	}

	// Refused first: then the accepted event's sequence number shows that nothing else got in.
	wrong := pub.Credential[:strings.LastIndex(pub.Credential, "_")+1] + "not-the-secret"
	if _, stderr, err := publish(wrong, "5000", false, "tos", "cargo_loaded", "E1", "node-wrong-cred"); !failed(err) || !strings.Contains(stderr, "Authorization Violation") {
		t.Errorf("wrong credential: %v, stderr %q; want a non-zero exit with an authorization violation", err, stderr)
	}
	// nats.js matches the server's -ERR to the pending request; had it not, the request times out.
	_, stderr, err := publish(pub.Credential, "5000", false, "tms", "cargo_loaded", "E1", "node-other-source")
	if !failed(err) || !(strings.Contains(stderr, `Permissions Violation for Publish to "evt.tms.cargo_loaded"`) || strings.Contains(stderr, "TIMEOUT")) {
		t.Errorf("source tms with the tos credential: %v, stderr %q; want a non-zero exit with a permissions violation", err, stderr)
	}

	// Spaces and key order of our own: the receiver must get these very bytes.
	event := `{"id":"node-1", "type":"cargo_loaded", "source":"tos", "entity":"MSCU 7654321", "occurred_at":"2026-11-23T10:00:00Z", "data":{"vessel":"MAERSK KOLKATA", "bay":12}}`
	stdout, _, err := publish(pub.Credential, "60000", true, event)
	if err != nil {
		t.Fatalf("publish with the credential: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	var ack struct {
		Stream    string
		Seq       uint64
		Duplicate bool
	}
	// Sequence 1 is the operator event of the endpoint's creation.
	if err := json.Unmarshal([]byte(lines[0]), &ack); err != nil || ack.Stream != "QUAYCAST_EVENTS" || ack.Seq != 2 || ack.Duplicate {
		t.Errorf("PubAck line %q (%v): want stream QUAYCAST_EVENTS, seq 2 (nothing refused got in after the endpoint's creation), not a duplicate", lines[0], err)
	}
	select {
	case d := <-got:
		if d.id != "node-1" || string(d.body) != event {
			t.Errorf("receiver got webhook-id %q, body %s; want node-1 and the bytes published", d.id, d.body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing within 30s (the script had exited)")
	}
	var reply struct{ Subject, Body string }
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &reply) != nil {
		t.Fatalf("want the PubAck and the reply on two lines, got %q", stdout)
	}
	if want := "quaycast.reply.tos." + subjects.EncodeToken(ep.ID) + ".cargo_loaded." + subjects.EncodeToken("MSCU 7654321"); reply.Subject != want || reply.Body != `{"ack":true}` {
		t.Errorf("reply %+v; want subject %s and body {\"ack\":true}", reply, want)
	}
}

// installNatsJS installs the example's dependencies from its lock file when they are missing, so
// the README's test command runs this test on a machine that has node and npm.
func installNatsJS() error {
	if _, err := os.Stat(filepath.Join(natsjsDir, "node_modules", "nats", "package.json")); err == nil {
		return nil
	}
	out, err := exec.Command("npm", "ci", "--prefix", natsjsDir, "--no-audit", "--no-fund").CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm ci --prefix examples/natsjs: %w\n%s", err, out)
	}
	return nil
}
