package gateway

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// The sender keeps the idle connections of every receiver it sends to at once: with more of them
// than a cap over all receivers would keep (1,152 here; the cap was 1,024), a second pass over the
// same receivers dials nothing. An evicted connection is a new dial, and a TLS handshake on a
// real receiver, for the next POST.
func TestConnectionsKeptForEveryReceiver(t *testing.T) {
	t.Parallel()
	const hosts, perHost = 24, 48 // each host's connections stay under MaxIdleConnsPerHost
	var dialled atomic.Int64
	servers := make([]*httptest.Server, hosts)
	for i := range servers {
		var mu sync.Mutex
		arrived, all := 0, make(chan struct{})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			mu.Lock()
			wait := all
			if arrived++; arrived%perHost == 0 { // a pass's requests all hold a connection at once
				close(all)
				all = make(chan struct{})
			}
			mu.Unlock()
			select {
			case <-wait:
			case <-time.After(10 * time.Second):
			}
			w.WriteHeader(http.StatusNoContent)
		}))
		srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				dialled.Add(1)
			}
		}
		srv.Start()
		t.Cleanup(srv.Close)
		servers[i] = srv
	}
	s := loopbackSender(t, zerolog.Nop(), SenderOptions{})
	pass := func() {
		for i, srv := range servers {
			ep := testEndpoint(fmt.Sprintf("ep_%d", i), srv.URL)
			var wg sync.WaitGroup
			for j := range perHost {
				wg.Go(func() {
					if a, err := s.Test(t.Context(), testDelivery(ep, fmt.Sprintf("evt-%d", j), "V1")); err != nil || a.Outcome != "delivered" {
						t.Errorf("POST to %s: %v %+v", srv.URL, err, a)
					}
				})
			}
			wg.Wait()
		}
	}
	pass()
	first := dialled.Load()
	if first < hosts*perHost {
		t.Fatalf("the first pass opened %d connections, want at least %d", first, hosts*perHost)
	}
	pass()
	if n := dialled.Load() - first; n != 0 {
		t.Fatalf("the second pass dialled %d new connections, want 0: idle ones were closed", n)
	}
}
