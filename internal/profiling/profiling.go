package profiling

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// Server serves the profiles until Close.
type Server struct {
	url      string
	srv      *http.Server
	served   chan struct{}
	requests joined
}

// Serve listens on addr (checked by the caller: loopback only, see config.CheckPprofListen) and
// serves the profiles; a failure of the listener after it began is told to onError.
func Serve(addr string, onError func(error)) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s := &Server{url: "http://" + ln.Addr().String(), served: make(chan struct{})}
	// No write timeout: a CPU profile or a trace answers after the seconds it was asked for.
	s.srv = &http.Server{Handler: s.requests.wrap(mux), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			onError(err)
		}
	}()
	return s, nil
}

// URL is the base URL of the listener; the profiles are under /debug/pprof/.
func (s *Server) URL() string { return s.url }

// Close stops serving and returns once the server and every request it was answering have ended.
// It uses Close, not Shutdown: a profile being taken is cut short (closing its connection ends its
// request's context) rather than holding the stop for up to its seconds.
func (s *Server) Close() {
	_ = s.srv.Close()
	<-s.served
	s.requests.close()
}

// joined counts the requests a handler is answering, so that close can wait for them: once closed,
// it answers no new one.
type joined struct {
	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

func (j *joined) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.mu.Lock()
		if j.closed {
			j.mu.Unlock()
			http.Error(w, "stopping", http.StatusServiceUnavailable)
			return
		}
		j.running.Add(1) // under mu, so that no Add comes after close's Wait began
		j.mu.Unlock()
		defer j.running.Done()
		h.ServeHTTP(w, r)
	})
}

// close waits for the requests being answered and refuses later ones.
func (j *joined) close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.running.Wait()
}
