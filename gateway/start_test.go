package gateway_test

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/gateway"
	"github.com/quaycast/quaycast/gateway/gatewaytest"
	"github.com/quaycast/quaycast/internal/fielderr"
	"github.com/quaycast/quaycast/internal/testwait"
)

// A gateway that cannot run says why at Start.
func TestStartFailsWithRunsError(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t)
	cfg.MarksFlush = 0
	stop, err := gateway.New(cfg, zerolog.New(zerolog.NewTestWriter(t))).Start(t.Context())
	var fe *fielderr.Error
	if !errors.As(err, &fe) || fe.Field != "marks-flush" || stop != nil {
		t.Errorf("Start: %v (stop %v), want the error naming --marks-flush", err, stop != nil)
	}
}

// A started gateway answers its API until stopped, and its stop returns Run's nil error.
func TestStartRunsUntilStopped(t *testing.T) {
	t.Parallel()
	g := gateway.New(gatewaytest.Config(t), zerolog.New(zerolog.NewTestWriter(t)))
	stop, err := g.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c := gateway.NewClient(g.APIURL())
	if err := c.Do(t.Context(), "GET", "/healthz", nil, nil); err != nil {
		t.Errorf("healthz after Start: %v", err)
	}
	if err := stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	if err := c.Do(t.Context(), "GET", "/healthz", nil, nil); err == nil {
		t.Error("healthz answered after stop")
	}
}

// Stopping the embedded NATS server is said before and after, with its consumers and how long
// it took: with thousands of endpoints it is most of a gateway's stop (the server stops each
// consumer in turn), and the log is where an operator looks for why a stop is slow.
func TestStopSaysWhatTheEmbeddedServerTook(t *testing.T) {
	t.Parallel()
	r, logs := startGatewayLogged(t, gatewaytest.Config(t))
	r.addEndpoint(t, map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"cargo_loaded"}})
	r.addEndpoint(t, map[string]any{"url": "http://127.0.0.1:9/hook", "event_types": []string{"cargo_gated_in"}})
	// A create answers once stored; the consumer follows. Said once it is made (asleep or not).
	testwait.For(t, 20*time.Second, "both endpoints' consumers", func() bool {
		return strings.Count(logs.String(), `"message":"endpoint added`) >= 2
	})
	r.Stop(t)
	var before, after struct {
		Message   string  `json:"message"`
		Consumers int     `json:"consumers"`
		Took      float64 `json:"took"`
	}
	for line := range strings.Lines(logs.String()) {
		switch {
		case strings.Contains(line, `"stopping the embedded NATS server"`):
			_ = json.Unmarshal([]byte(line), &before)
		case strings.Contains(line, `"embedded NATS server stopped"`):
			_ = json.Unmarshal([]byte(line), &after)
		}
	}
	// Two endpoints' consumers, at least (the streams' own, such as the sleep watcher's, may add).
	if before.Consumers < 2 || after.Consumers != before.Consumers || after.Took <= 0 {
		t.Errorf("stop logged %+v before and %+v after, want the consumers (at least 2) and the time taken\n%s", before, after, logs)
	}
}

// A start says how the last run left the embedded NATS server, before the server's own recovery
// warnings: nothing after a clean stop, a warning after a kill or a crash, a note after a stop
// cut short by --nats-stop-timeout. The data dir's mark says which.
func TestStartSaysHowTheLastRunStopped(t *testing.T) {
	t.Parallel()
	cfg := gatewaytest.Config(t)
	mark := filepath.Join(cfg.DataDir, "embedded-nats.running")
	const killed, cut = "the last run did not stop (killed, or crashed)", "last stop was cut short (--nats-stop-timeout)"
	for _, tc := range []struct {
		name, left string // what the run before left in the mark; "" none (the clean stop before removed it)
		want       string // the line this start logs; "" neither
	}{
		{"first start", "", ""},
		{"after a clean stop", "", ""},
		{"after a kill", "running\n", killed},
		{"after a stop cut short", "stop cut short\n", cut},
	} {
		if tc.left != "" {
			if err := os.WriteFile(mark, []byte(tc.left), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		r, logs := startGatewayLogged(t, cfg)
		if b, err := os.ReadFile(mark); err != nil || string(b) != "running\n" {
			t.Errorf("%s: the mark while running is %q, %v; want running", tc.name, b, err)
		}
		r.Stop(t)
		for _, line := range []string{killed, cut} {
			if got := strings.Contains(logs.String(), line); got != (line == tc.want) {
				t.Errorf("%s: logged %q: %v, want %v\n%s", tc.name, line, got, line == tc.want, logs)
			}
		}
		if _, err := os.Stat(mark); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the mark after a clean stop: %v, want it gone", tc.name, err)
		}
	}
}

// A POST that outlasts --shutdown-timeout ends with it: the stop closes the connection under
// it, rather than wait for --delivery-timeout (fasthttp does not end a POST when its context
// does), and the receiver sees the connection go.
func TestStopEndsPOSTsThatOutlastTheShutdownTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.DeliveryTimeout, cfg.AckWait, cfg.ShutdownTimeout = time.Minute, 2*time.Minute, 300*time.Millisecond
	arrived, gone, testDone := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // read first: only then does the server notice a close
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			gone <- struct{}{}
		case <-testDone:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(testDone) })
	g := startGateway(t, cfg)
	g.addEndpoint(t, map[string]any{"url": hang.URL, "event_types": []string{"*"}})
	g.waitReady(t)
	publishNATS(t, g, spread(map[string][]string{}, "stop-%d", 0, 1, 1)...)
	<-arrived

	began := time.Now()
	g.Stop(t)
	if took := time.Since(began); took > cfg.DeliveryTimeout/2 {
		t.Errorf("the stop took %s with a POST out: it waited for the POST's deadline (%s), not --shutdown-timeout (%s)", took, cfg.DeliveryTimeout, cfg.ShutdownTimeout)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Error("the receiver still holds the POST's connection after the stop")
	}
}
