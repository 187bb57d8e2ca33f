package gateway

import "github.com/quaycast/quaycast/internal/profiling"

// servePprof serves Go's profiles at --pprof-listen, when set, on a listener of its own (see
// internal/profiling). It serves from the start, so that a slow start can be profiled too, until
// Run returns: closing is pushed on closers.
func (g *Gateway) servePprof(closers *undo) error {
	if g.cfg.PprofListen == "" {
		return nil
	}
	s, err := profiling.Serve(g.cfg.PprofListen, func(err error) { g.log.Warn().Err(err).Msg("pprof listener") })
	if err != nil {
		return listenError("pprof-listen", err)
	}
	closers.push(s.Close)
	g.mu.Lock()
	g.pprofURL = s.URL()
	g.mu.Unlock()
	g.log.Info().Str("pprof", g.pprofURL+"/debug/pprof/").Msg("serving profiles")
	return nil
}
