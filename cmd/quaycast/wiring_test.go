package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quaycast/quaycast/gateway"
)

// With --log-format json every line quaycast writes to stderr is JSON while its external
// nats-server is killed and restarted under load, and restarted once more with quaycast's
// password changed: the NATS client's asynchronous errors (writes to the dead server, the
// authorization error while reconnecting) go through the logger, not to stderr as plain text.
func TestJSONLogsWhileNATSRestarts(t *testing.T) {
	t.Parallel()
	port, storeDir := freePort(t), t.TempDir()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	ns := startNATSWithPassword(t, port, storeDir, "first-password")

	var mu sync.Mutex
	delivered := map[string]bool{}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		delivered[r.Header.Get("webhook-id")] = true
		mu.Unlock()
	}))
	defer recv.Close()

	p := serve(t, "--nats-url", url, "--nats-user", "quaycast", "--nats-password", "first-password", "--data-dir", t.TempDir(),
		"--retry-schedule", "50ms,100ms,200ms", "--shutdown-timeout", "3s")
	api := gateway.NewClient(p.api)
	api.HTTP.Timeout = 5 * time.Second
	if err := api.Do(context.Background(), "POST", "/v1/endpoints", map[string]any{"url": recv.URL, "event_types": []string{"cargo_loaded"}}, nil); err != nil {
		t.Fatal(err)
	}
	waitReady(t, p.api)

	// Events over the ingest API, through quaycast's NATS connection, all along.
	var (
		pubMu   sync.Mutex
		pubTurn int    // which NATS server the events were published to
		lastID  string // the last event published to the current one
	)
	stop := make(chan struct{})
	var publisher sync.WaitGroup
	publisher.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			pubMu.Lock()
			turn := pubTurn
			pubMu.Unlock()
			id := fmt.Sprintf("turn%d-%05d", turn, i)
			body := fmt.Sprintf(`{"id":%q,"type":"cargo_loaded","source":"tos","entity":"E%d","occurred_at":"2026-11-23T10:00:00Z","data":{}}`, id, i%10)
			if api.Do(context.Background(), "POST", "/v1/events", []byte(body), nil) == nil {
				pubMu.Lock()
				if turn == pubTurn {
					lastID = id
				}
				pubMu.Unlock()
			}
		}
	})
	defer func() {
		close(stop)
		publisher.Wait()
	}()
	waitDelivery := func(what string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			pubMu.Lock()
			id := lastID
			pubMu.Unlock()
			mu.Lock()
			ok := id != "" && delivered[id]
			mu.Unlock()
			if ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no event published %s delivered within 60s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	nextTurn := func() {
		pubMu.Lock()
		pubTurn++
		lastID = ""
		pubMu.Unlock()
	}
	waitDelivery("at first")

	// Killed in mid-stream and restarted: quaycast reconnects and delivers again.
	_ = ns.Process.Signal(syscall.SIGKILL)
	_ = ns.Wait()
	ns = startNATSWithPassword(t, port, storeDir, "first-password")
	nextTurn()
	waitDelivery("after the restart")

	// Restarted with another password for quaycast: the reconnect is refused for authorization,
	// which nats.go reports asynchronously.
	_ = ns.Process.Signal(syscall.SIGKILL)
	_ = ns.Wait()
	startNATSWithPassword(t, port, storeDir, "rotated-password")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(strings.ToLower(p.output()), "authorization violation") {
		if time.Now().After(deadline) {
			t.Fatal("quaycast reported no authorization violation within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}

	checkJSONLines(t, p.output())
}

// startNATSWithPassword runs nats-server with JetStream on a loopback port, for the user quaycast
// with password, and waits until it answers.
func startNATSWithPassword(t *testing.T, port int, storeDir, password string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(natsServer, "-a", "127.0.0.1", "-p", strconv.Itoa(port), "-js", "-sd", storeDir, "--user", "quaycast", "--pass", password)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect("nats://127.0.0.1:"+strconv.Itoa(port), nats.UserInfo("quaycast", password), nats.Timeout(time.Second))
		if err == nil {
			nc.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("nats-server on port %d not ready: %v", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
