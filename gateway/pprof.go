package gateway

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// servePprof serves Go's profiles (net/http/pprof) at --pprof-listen, when set, on a listener and
// mux of their own: the API's mux never routes /debug/pprof/ (net/http/pprof registers on
// http.DefaultServeMux, which nothing in quaycast serves). It serves from the start, so that a
// slow start can be profiled too, until Run returns: closing is pushed on closers, and returns
// once the server and every request it was answering have ended.
func (g *Gateway) servePprof(closers *undo) error {
	if g.cfg.PprofListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", g.cfg.PprofListen)
	if err != nil {
		return listenError("pprof-listen", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // and the named profiles: heap, goroutine, allocs, ...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var requests joined
	// No write timeout: a CPU profile or a trace answers after the seconds it was asked for.
	srv := &http.Server{Handler: requests.wrap(mux), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Warn().Err(err).Msg("pprof listener")
		}
	}()
	closers.push(func() {
		// Close, not Shutdown: a profile being taken is cut short (closing its connection ends its
		// request's context) rather than holding the stop for up to its seconds.
		_ = srv.Close()
		<-served
		requests.close()
	})
	g.mu.Lock()
	g.pprofURL = "http://" + ln.Addr().String()
	g.mu.Unlock()
	g.log.Info().Str("pprof", g.pprofURL+"/debug/pprof/").Msg("serving profiles")
	return nil
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
