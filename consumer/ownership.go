package consumer

import (
	"context"
	"slices"
	"time"
)

// Lease is this gateway's right to act on the endpoints it owns (cluster.Supervisor): once it
// has run out another gateway may take them over at any moment.
type Lease interface{ Held() bool }

// Supervise makes the manager deliver only to the endpoints it is told to own (Own, Disown,
// Fence): several gateways share the endpoints and cluster.Supervisor decides which runs where.
// Every gateway still keeps every endpoint's consumer defined. A worker does nothing that another
// owner would have to know of — a POST, a park, a dead letter, disabling its endpoint — unless
// lease is held (nil: never, an API-only gateway owns nothing anyway). onChange is called after
// each change of the registry. Call before Run.
func (m *Manager) Supervise(lease Lease, onChange func()) {
	m.supervised = true
	m.lease = lease
	m.onChange = onChange
	m.owned = make(map[string]bool)
	m.abort = make(chan struct{})
}

// owns reports whether this gateway delivers to id.
func (m *Manager) owns(id string) bool {
	if !m.supervised {
		return true
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[id]
}

// defined keeps the set of endpoints (for Endpoints) after a change of the registry.
func (m *Manager) defined(c Change) {
	if c.ID != "" {
		m.mu.Lock()
		if c.Endpoint == nil && c.Err == nil {
			delete(m.defs, c.ID)
		} else {
			m.defs[c.ID] = c.Endpoint
		}
		m.mu.Unlock()
		m.seen.advance(c.Revision)
	}
	if m.onChange != nil && m.Ready() {
		m.onChange()
	}
}

// Endpoints are the ids of every endpoint in the registry, sorted; none until the registry has
// been read at start.
func (m *Manager) Endpoints() []string {
	if !m.Ready() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.defs))
	for id := range m.defs {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Own starts delivering to an endpoint on this gateway, from its durable record: what the
// gateway that delivered to it before wrote down is not sent again.
func (m *Manager) Own(ctx context.Context, id string) error {
	log, err := m.o.Marks.loadEndpoint(ctx, id)
	if err != nil {
		return err
	}
	parked := m.hasParks(ctx, id) // the last owner's parks: it starts awake to drain them
	started := make(chan struct{})
	apply := func(ctx context.Context) {
		defer close(started)
		m.mu.Lock()
		if old := m.memory[id]; old != nil { // from an earlier turn here: the record is newer
			m.o.Marks.unregister(old)
		}
		p := newProgress(id, m.o.Marks)
		restoreInto(p, log)
		m.memory[id] = p
		m.owned[id] = true
		if parked {
			m.parked[id] = true
		} else {
			delete(m.parked, id)
		}
		m.parksKnown = true
		ep := m.defs[id]
		m.mu.Unlock()
		if ep != nil && ep.SecretErr == nil {
			m.applyOrRetry(ctx, ep)
		}
	}
	select { // on Run's goroutine: workers live as long as Run, not as this call
	case m.do <- apply:
	case <-ctx.Done():
		return ctx.Err()
	}
	<-started
	return nil
}

// Disown stops delivering to an endpoint here. The channel closes once its deliveries in flight
// have ended (within ShutdownTimeout) and its marks are written, so that the next owner, reading
// them, does not send again what this one delivered.
func (m *Manager) Disown(id string) <-chan struct{} {
	m.mu.Lock()
	delete(m.owned, id)
	delete(m.failed, id)
	sweep := m.sweepers[id]
	m.mu.Unlock()
	m.stopSweep(id)
	stopped := m.stopAsync(id)
	out := make(chan struct{})
	m.bg.Go(func() {
		defer close(out)
		if sweep != nil {
			<-sweep.done
		}
		if stopped != nil {
			<-stopped
		}
		m.mu.Lock()
		d := m.memory[id]
		if d != nil && !m.owned[id] {
			delete(m.memory, id)
		} else {
			d = nil // owned again meanwhile: its new turn has its own marks
		}
		m.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.o.Marks.release(ctx, d); err != nil {
			m.log.Warn().Err(err).Str("endpoint_id", id).Msg("write delivery marks at handover: the next owner may send some events again")
		}
	})
	return out
}

// Fence stops every endpoint at once — the gateway lost its lease and another may start on them
// soon — cancelling the POSTs in flight, and returns once all have stopped. Marks not yet
// written are dropped rather than written late over the next owner's.
func (m *Manager) Fence() {
	m.mu.Lock()
	ids := make([]string, 0, len(m.running)+len(m.sweepers))
	for id := range m.running {
		ids = append(ids, id)
	}
	for id := range m.sweepers {
		ids = append(ids, id)
	}
	m.owned = make(map[string]bool)
	m.failed = make(map[string]*Endpoint)
	if m.abort != nil {
		close(m.abort)
	}
	m.abort = make(chan struct{})
	for id, d := range m.memory {
		m.o.Marks.unregister(d)
		delete(m.memory, id)
	}
	m.mu.Unlock()
	var dones []<-chan struct{}
	for _, id := range ids {
		m.mu.Lock()
		sweep := m.sweepers[id]
		m.mu.Unlock()
		m.stopSweep(id)
		if sweep != nil {
			dones = append(dones, sweep.done)
		}
		if done := m.stopAsync(id); done != nil {
			dones = append(dones, done)
		}
	}
	for _, d := range dones {
		<-d
	}
	m.log.Warn().Int("endpoints", len(ids)).Msg("fenced: stopped delivering to every endpoint")
}
