package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/testhttp"
)

// --pprof-listen serves the profiles on a listener of its own: the index and the heap profile
// answer there, the API's listener does not serve them, and the listener is closed once the
// gateway has stopped.
func TestPprofOnItsOwnListener(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.PprofListen = "127.0.0.1:0"
	g := startGateway(t, cfg)
	base := g.PprofURL()
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("PprofURL() = %q, want http://127.0.0.1:<port>", base)
	}
	if base == g.APIURL() {
		t.Fatalf("the profiles share the API's address %s", base)
	}

	for _, c := range []struct{ path, want string }{
		{"/debug/pprof/", "heap"}, // the index lists the profiles
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
	} {
		code, body, err := testhttp.Get(base + c.path)
		if err != nil || code != http.StatusOK || !strings.Contains(body, c.want) {
			t.Errorf("GET %s on the pprof listener: %d, %v, body %.200q; want 200 with %q", c.path, code, err, body, c.want)
		}
		code, body, err = testhttp.Get(g.APIURL() + c.path)
		if err != nil {
			t.Errorf("GET %s on the API: %v", c.path, err)
		} else if code == http.StatusOK || strings.Contains(body, c.want) {
			t.Errorf("GET %s on the API: %d, body %.200q; the API must not serve profiles", c.path, code, body)
		}
	}

	addr := strings.TrimPrefix(base, "http://")
	g.Stop(t)
	if _, _, err := testhttp.Get(base + "/debug/pprof/"); err == nil {
		t.Error("the pprof listener still answers after the gateway stopped")
	}
	wantPortFree(t, addr)
}

// Without --pprof-listen nothing serves profiles: no listener, and not the API.
func TestPprofOffByDefault(t *testing.T) {
	t.Parallel()
	g := startGateway(t, testConfig(t))
	if u := g.PprofURL(); u != "" {
		t.Errorf("PprofURL() = %q with --pprof-listen unset, want empty", u)
	}
	if code, _, err := testhttp.Get(g.APIURL() + "/debug/pprof/heap?debug=1"); err != nil || code == http.StatusOK {
		t.Errorf("GET /debug/pprof/heap on the API: %d, %v; want an answer that is not 200", code, err)
	}
}

// A --pprof-listen address in use fails the start naming the flag, and the API's listener opened
// before it is closed again.
func TestPprofListenBusy(t *testing.T) {
	t.Parallel()
	runOnBusyPort(t, "pprof-listen", func(c *config.Config, addr string) { c.PprofListen = addr })
}
