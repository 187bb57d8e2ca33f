package gateway_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// An entity whose receiver fails shows in its endpoint's view (blocked, its later events parked)
// and in the metrics while it is stuck, and no longer once it recovers; its events then arrive
// in order.
func TestStuckEntityShown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.BreakerFailures, cfg.BreakerMinRequests = 1<<30, 1<<30 // entity A's failures must not open it
	g := startGateway(t, cfg)

	var healthy atomic.Bool
	var mu sync.Mutex
	var gotA []string
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct{ ID, Entity string }
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &env); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if env.Entity == "A" {
			if !healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			mu.Lock()
			gotA = append(gotA, env.ID)
			mu.Unlock()
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rc.Close)
	ep := g.addEndpoint(t, map[string]any{"url": rc.URL, "event_types": []string{"*"}})
	g.waitReady(t)

	ingest := func(id, entity string) {
		t.Helper()
		if status, body := call(t, g, "POST", "/v1/events", string(event(id, "cargo_loaded", entity))); status != http.StatusAccepted {
			t.Fatalf("ingest %s: %d %v", id, status, body)
		}
	}
	var as []string
	for i := range 5 {
		as = append(as, fmt.Sprintf("A-%d", i))
		ingest(as[i], "A")
	}
	ingest("B-0", "B")

	wantStuck := map[string]any{"blocked": 1.0, "parked": 1.0, "parked_events": 4.0, "entities": []any{"A"}}
	var stuck any
	testwait.For(t, 20*time.Second, "A shown blocked with 4 events parked", func() bool {
		_, b := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
		stuck = b["stuck"]
		return reflect.DeepEqual(stuck, wantStuck)
	})
	metric := func(name string, v int) string { return fmt.Sprintf("%s{endpoint=%q} %d", name, ep.ID, v) }
	testwait.For(t, 10*time.Second, "the stuck metrics", func() bool {
		m := scrape(t, g)
		return strings.Contains(m, metric("quaycast_entities_blocked", 1)) && strings.Contains(m, metric("quaycast_entities_parked", 1)) &&
			strings.Contains(m, metric("quaycast_parked_events", 4))
	})

	healthy.Store(true)
	testwait.For(t, 20*time.Second, "A's events delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(gotA) >= len(as) })
	testwait.For(t, 10*time.Second, "nothing stuck in the view", func() bool {
		_, b := call(t, g, "GET", "/v1/endpoints/"+ep.ID, "")
		_, shown := b["stuck"]
		return !shown && b["id"] == ep.ID
	})
	m := scrape(t, g)
	for _, name := range []string{"quaycast_entities_blocked", "quaycast_entities_parked", "quaycast_parked_events"} {
		if !strings.Contains(m, metric(name, 0)) {
			t.Errorf("metrics: no %s", metric(name, 0))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(gotA, as) {
		t.Errorf("A delivered %v, want %v", gotA, as)
	}
}
