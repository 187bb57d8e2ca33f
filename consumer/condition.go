package consumer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/conditions"
	"github.com/quaycast/quaycast/subjects"
)

// An endpoint's condition (package conditions) decides per event whether it is sent at all. An
// event it does not take is acknowledged without a POST: it is not a delivery, so the durable
// record and the previous-event header pass over it. An evaluation that fails (a missing field,
// a type mismatch, the cost limit) counts as no, and is counted apart.

// ConditionStats are an endpoint's condition figures on this gateway since it started.
type ConditionStats struct {
	Skipped     uint64    `json:"skipped"`              // events the condition did not take
	Errors      uint64    `json:"errors"`               // of those, evaluations that failed
	LastError   string    `json:"last_error,omitempty"` // the latest failure
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// conditionStats counts for one endpoint across its workers.
type conditionStats struct {
	skipped, errors atomic.Uint64
	mu              sync.Mutex
	lastErr         string
	lastErrAt       time.Time
}

func (s *conditionStats) stats() ConditionStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ConditionStats{Skipped: s.skipped.Load(), Errors: s.errors.Load(), LastError: s.lastErr, LastErrorAt: s.lastErrAt}
}

// compiledCondition is an endpoint's condition compiled, for the text it was compiled from.
type compiledCondition struct {
	src  string
	cond *conditions.Condition
	err  error
}

// Conditions are the condition figures of an endpoint on this gateway.
func (m *Manager) Conditions(id string) ConditionStats {
	m.mu.Lock()
	s := m.conds[id]
	m.mu.Unlock()
	if s == nil {
		return ConditionStats{}
	}
	return s.stats()
}

// OnCondition sets a function called for each event an endpoint's condition did not take, err
// set when its evaluation failed (for metrics). Call it before Run.
func (m *Manager) OnCondition(f func(endpointID string, err error)) { m.onCondition = f }

// conditionStatsLocked is an endpoint's figures, made on first use. Callers hold m.mu.
func (m *Manager) conditionStatsLocked(id string) *conditionStats {
	s := m.conds[id]
	if s == nil {
		s = &conditionStats{}
		m.conds[id] = s
	}
	return s
}

// takes reports whether the endpoint's condition takes the event at seq; with no condition it
// takes everything.
func (w *worker) takes(seq uint64, env *subjects.Envelope, body []byte) bool {
	ep := w.ep.Load()
	if ep.Condition == "" {
		return true
	}
	cc := w.cond.Load()
	if cc == nil || cc.src != ep.Condition { // compiled once per text, not per event
		c, err := conditions.Compile(ep.Condition)
		cc = &compiledCondition{src: ep.Condition, cond: c, err: err}
		w.cond.Store(cc)
	}
	err := cc.err
	ok := false
	if err == nil {
		ok, err = cc.cond.Match(w.checked.event(seq, env, body))
	}
	if ok {
		return true
	}
	w.condStats.skipped.Add(1)
	if err != nil {
		w.condStats.errors.Add(1)
		w.condStats.mu.Lock()
		w.condStats.lastErr, w.condStats.lastErrAt = err.Error(), time.Now().UTC()
		w.condStats.mu.Unlock()
	}
	if w.onCondition != nil {
		w.onCondition(ep.ID, err)
	}
	return false
}

// skip acknowledges an event the condition did not take.
func (w *worker) skip(ctx context.Context, msg jetstream.Msg, seq uint64) {
	w.ack(msg, seq)
	w.routedTo(ctx, seq)
}
