package gateway

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// runMark is a file in the data dir that is there while the embedded NATS server runs, and says
// so when its last stop was cut short (--nats-stop-timeout). A start that finds it knows the
// server did not stop cleanly and says why the server's own recovery warnings follow
// ("Stream state detected prior state", "Recovering stream state"), which otherwise read like
// damage: an operator sees them after every stop of 10,000 endpoints.
type runMark struct {
	path string
	mu   sync.Mutex
	done bool // the server stopped, or the stop was cut short: nothing more is written
}

const (
	runMarkFile = "embedded-nats.running"
	runMarkCut  = "stop cut short\n"
)

// lastRun says what the previous run's mark tells, before the server starts and logs its own.
func (g *Gateway) lastRun(dir string) {
	switch b, err := os.ReadFile(filepath.Join(dir, runMarkFile)); {
	case err == nil && string(b) == runMarkCut:
		g.log.Info().Msg("the embedded NATS server's last stop was cut short (--nats-stop-timeout): it may rebuild stream indexes now, and warn of it (Filestore ... Recovering stream state)")
	case err == nil:
		g.log.Warn().Msg("the last run did not stop (killed, or crashed): the embedded NATS server recovers its streams now, and may warn of it (Filestore ... Recovering stream state); what it acknowledged is on disk")
	case !errors.Is(err, fs.ErrNotExist):
		g.log.Warn().Err(err).Msg("read the run mark in the data dir")
	}
}

// markRun marks this run, once the server runs.
func (g *Gateway) markRun(dir string) *runMark {
	m := &runMark{path: filepath.Join(dir, runMarkFile)}
	if err := os.WriteFile(m.path, []byte("running\n"), 0o600); err != nil {
		g.log.Warn().Err(err).Msg("write the run mark in the data dir: the next start cannot tell whether this one stopped cleanly")
	}
	return m
}

// stopped removes the mark: the server stopped cleanly.
func (m *runMark) stopped() { m.end(func() error { return os.Remove(m.path) }) }

// cutShort records that the stop was not waited for; the server may still stop in time, and
// then stopped wins if it comes first.
func (m *runMark) cutShort() {
	m.end(func() error { return os.WriteFile(m.path, []byte(runMarkCut), 0o600) })
}

func (m *runMark) end(write func() error) {
	if m == nil { // the server did not get to run
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	m.done = true
	_ = write() // a mark not updated makes the next start say "did not stop": a wrong word, no harm
}
