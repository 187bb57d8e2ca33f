package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testtool"
	"github.com/quaycast/quaycast/internal/testwait"
)

// receiverPy is the example receiver, from this package's folder.
var receiverPy = filepath.Join("..", "..", "examples", "receiver.py")

// The Python example receiver, as the README runs it, against a gateway: on a port and with a
// secret from its arguments it verifies and accepts a delivery; configured through the environment
// with another secret than the endpoint's, it refuses one.
func TestExampleReceiver(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		testtool.Missing(t, "needs python3")
	}
	secret, other := newWhsec(t), newWhsec(t)
	good := startReceiverPy(t, []string{"0", "--secret", secret}, nil)
	bad := startReceiverPy(t, nil, []string{"PORT=0", "WEBHOOK_SECRET=" + other})

	dataDir := t.TempDir()
	p := serve(t, "--data-dir", dataDir, "--nats-listen", "127.0.0.1:0")
	for _, r := range []*receiverProc{good, bad} {
		run(t, "endpoints", "add", "--api", p.api, "--url", r.url+"hooks", "--types", "cargo_gated_in", "--secret", secret)
	}
	waitReady(t, p.api)
	run(t, "publish", "--nats-url", p.nats, "--data-dir", dataDir, "--type", "cargo_gated_in", "--entity", "MSCU1234567", "--id", "py-1", "--data", `{"gate":"G3"}`)

	good.waitFor(t, "cargo_gated_in py-1 signature ok ")
	bad.waitFor(t, "cargo_gated_in py-1 BAD SIGNATURE ")
}

func newWhsec(t *testing.T) string {
	t.Helper()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(key)
}

// receiverProc is a running examples/receiver.py.
type receiverProc struct {
	url string // http://127.0.0.1:<port>/

	mu    sync.Mutex
	lines []string
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+/)`)

// startReceiverPy runs receiver.py with args and extra environment, and waits until it listens.
func startReceiverPy(t *testing.T, args, env []string) *receiverProc {
	t.Helper()
	cmd := exec.Command("python3", append([]string{"-u", receiverPy}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &receiverProc{}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			r.mu.Lock()
			t.Logf("receiver.py %q printed:\n%s", args, strings.Join(r.lines, "\n"))
			r.mu.Unlock()
		}
	})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
	}()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				listening <- m[1]
			} else {
				r.mu.Lock()
				r.lines = append(r.lines, "stderr: "+sc.Text())
				r.mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		close(listening)
	}()
	select {
	case u, ok := <-listening:
		if !ok {
			t.Fatalf("receiver.py %q exited without listening", args)
		}
		r.url = u
	case <-time.After(30 * time.Second):
		t.Fatalf("receiver.py %q not listening within 30s", args)
	}
	return r
}

// waitFor waits until the receiver printed a line starting with prefix and ending in the event
// as JSON.
func (r *receiverProc) waitFor(t *testing.T, prefix string) {
	t.Helper()
	testwait.For(t, 30*time.Second, fmt.Sprintf("receiver.py at %s to print a line %q...", r.url, prefix), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.ContainsFunc(r.lines, func(l string) bool {
			rest, ok := strings.CutPrefix(l, prefix)
			return ok && json.Valid([]byte(rest))
		})
	})
}
