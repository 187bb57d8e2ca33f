package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Held reports whether this gateway's lease is valid now: a POST may start. It is cheap enough
// to ask before every POST.
func (s *Supervisor) Held() bool { return int64(time.Since(s.base)) < s.lease.Load() }

// renew keeps the lease until ctx ends. A renewal is a compare-and-set on the member's own key,
// so one that finds the key gone (expired while this process was stopped or cut off) fails
// instead of bringing a dead session back.
func (s *Supervisor) renew(ctx context.Context) {
	every := s.o.RenewEvery()
	for ctx.Err() == nil {
		s.mu.Lock()
		lost, self, rev := s.lost, s.self, s.selfRev
		s.mu.Unlock()
		now := time.Since(s.base)
		if rev != 0 && (lost || int64(now) >= s.lease.Load()) {
			s.fence(ctx)
			continue
		}
		// Wait for an answer at most one renewal period, and never past the lease: a request lost
		// in a reconnect or a stream leader election is sent again rather than waited on until the
		// lease ends (one NATS node of three killed under load fenced a gateway so).
		wait := 3 * every
		if rev != 0 {
			wait = min(every, max(time.Duration(s.lease.Load())-now, 100*time.Millisecond))
		}
		sent := time.Since(s.base)
		b, _ := json.Marshal(self)
		pctx, cancel := context.WithTimeout(ctx, wait)
		var err error
		var newRev uint64
		if rev == 0 {
			newRev, err = s.leases.Create(pctx, self.ID, b)
		} else {
			newRev, err = s.leases.Update(pctx, self.ID, b, rev)
		}
		adopted := false
		if rev != 0 && errors.Is(err, jetstream.ErrKeyExists) {
			// Taken as lost unless the key holds this very session: then an earlier attempt
			// landed and only its answer went missing.
			newRev, err = s.ownRevision(pctx, self.ID, b, err)
			adopted = err == nil
		}
		cancel()
		pause := every
		switch {
		case err == nil:
			s.mu.Lock()
			renewed := s.self.ID == self.ID && !s.lost
			if renewed {
				s.selfRev = newRev
			}
			s.mu.Unlock()
			if renewed && adopted {
				// When that write landed is not known, so it extends nothing: renew again at once
				// on its revision.
				pause = 0
			} else if renewed {
				s.lease.Store(int64(sent + s.o.RenewDeadline()))
				if rev == 0 {
					s.log.Info().Str("session", self.ID).Str("name", self.Name).Dur("lease_ttl", s.o.LeaseTTL).Msg("joined the cluster")
					s.Kick()
				}
			}
		case ctx.Err() != nil:
			return
		case rev != 0 && errors.Is(err, jetstream.ErrKeyExists):
			s.log.Warn().Str("session", self.ID).Msg("lease lost: another process changed or removed this gateway's member key")
			s.mu.Lock()
			s.lost = true
			s.mu.Unlock()
			continue
		default:
			s.log.Warn().Err(err).Str("session", self.ID).Msg("renew lease")
			pause = every / 4 // it has waited its answer's time already
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		case <-s.renewSoon:
		}
	}
}

// ownRevision is the revision of this session's key when it holds exactly b, written by an earlier
// renewal whose answer was lost; otherwise conflict, the error the update met.
func (s *Supervisor) ownRevision(ctx context.Context, id string, b []byte, conflict error) (uint64, error) {
	e, err := s.leases.Get(ctx, id)
	if err != nil || !bytes.Equal(e.Value(), b) {
		return 0, conflict
	}
	return e.Revision(), nil
}

// fence stops everything this session runs, cancelling POSTs in flight, and starts a new session
// that owns nothing: the old one's claims are taken over by others once its key has expired
// (or at once, when this gateway can remove the key itself).
func (s *Supervisor) fence(ctx context.Context) {
	s.lease.Store(0)
	s.mu.Lock()
	if s.stopRec != nil {
		s.stopRec() // a reconcile waiting on NATS returns now
	}
	s.mu.Unlock()
	s.turn.Lock()
	defer s.turn.Unlock()
	s.engine.Fence()
	s.mu.Lock()
	old := s.self
	s.self, s.selfRev, s.lost = s.newSession(), 0, false
	s.running = make(map[string]bool)
	s.fences++
	s.mu.Unlock()
	s.log.Warn().Str("session", old.ID).Str("new_session", s.self.ID).Dur("renew_deadline", s.o.RenewDeadline()).
		Msg("lease not renewed in time: stopped every endpoint, joining again as a new session")
	// Every endpoint of the old session has stopped: others need not wait for its key to expire.
	dctx, cancel := context.WithTimeout(ctx, s.o.RenewEvery())
	_ = s.members.Delete(dctx, old.ID)
	cancel()
}

// Fences is how many times this gateway lost its lease.
func (s *Supervisor) Fences() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fences
}
