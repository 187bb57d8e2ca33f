package profiling_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/profiling"
	"github.com/quaycast/quaycast/internal/testhttp"
)

// The profiles answer on their listener until Close; Close cuts short a CPU profile being taken
// rather than waiting out its seconds.
func TestServeUntilClose(t *testing.T) {
	s, err := profiling.Serve("127.0.0.1:0", func(err error) { t.Errorf("listener: %v", err) })
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := testhttp.Get(s.URL() + "/debug/pprof/goroutine?debug=1")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "goroutine profile:") {
		t.Fatalf("goroutine profile: %d, %.200q, %v", code, body, err)
	}

	profiling := make(chan error, 1)
	go func() {
		_, _, err := testhttp.Get(s.URL() + "/debug/pprof/profile?seconds=20")
		profiling <- err
	}()
	time.Sleep(200 * time.Millisecond) // the profile has begun (or Close refuses it: either way it ends)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited for the 20 s profile")
	}
	<-profiling
	if _, _, err := testhttp.Get(s.URL() + "/debug/pprof/"); err == nil {
		t.Error("the profiles still answer after Close")
	}
}

// A listen address that cannot be had is an error at once.
func TestServeRefusesABadAddress(t *testing.T) {
	if s, err := profiling.Serve("127.0.0.1:99999", func(error) {}); err == nil {
		s.Close()
		t.Fatal("Serve on port 99999: no error")
	}
}
