package consumer

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go"
)

// After a reconnect, messages JetStream sent while the connection was down are lost in transit:
// they come again only when their AckWait runs out, behind later ones — and a later event of the
// same entity delivered first would raise its mark above them, so that they would be acked
// unsent. A worker therefore routes nothing it receives once the connection it reset its consumer
// over has broken, and the manager restarts every worker (Reconnected), which resets the
// consumer to its ack floor so each entity's events come again in order.
//
// Whether the connection broke is read per message, so it must be cheap: not nc.Stats(), which
// takes the connection's lock. Two signals, both set up in run before the consumer is reset (so
// that no message of the reset's view is judged against a later state, nor the reverse):
//
//   - the manager's reconnects count, moved by Reconnected. nats.go calls Reconnected on its
//     callback goroutine some time after the connection is back, and messages of the new
//     connection may reach onMessage before it: alone it would leave that window open;
//   - a RECONNECTING status listener. nats.go sends RECONNECTING under its connection lock as it
//     drops the connection, before it dials again, so it is in the channel before any message of
//     the new connection is read; a non-blocking receive per message sees it.
//
// A message read before the break but handled after it is left as well: the reset sends it again,
// in order.

// Reconnected restarts every endpoint's worker after the NATS connection came back (set it as the
// connection's reconnect handler): a restarted worker resets its consumer to the ack floor first,
// so the events lost in transit come again in order.
func (m *Manager) Reconnected() {
	m.reconnects.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, rw := range m.running {
		select {
		case rw.restart <- struct{}{}:
		default: // one is already asked for
		}
	}
	m.log.Info().Int("endpoints", len(m.running)).Msg("NATS reconnected: restarting endpoint consumers from their ack floor")
}

// watchConnection notes the connection as it is now, before run resets the consumer; the returned
// function stops watching it.
func (w *worker) watchConnection() (unwatch func()) {
	nc := w.js.Conn()
	lost := nc.StatusChanged(nats.RECONNECTING)
	w.lost, w.broken = lost, false
	w.epoch = w.reconnects.Load()
	return func() { nc.RemoveStatusListener(lost) }
}

// sameConnection reports whether the connection has not broken since watchConnection. Called by
// onMessage only.
func (w *worker) sameConnection() bool {
	if w.broken {
		return false
	}
	select {
	case <-w.lost: // RECONNECTING, or closed: unwatched
		w.broken = true
		return false
	default:
	}
	return w.reconnects.Load() == w.epoch
}

// errDiverted ends a worker's run that found a delivery of its consumer gone elsewhere
// (inSequence): the manager starts it again, from the ack floor, after divertedWait.
var errDiverted = errors.New("a delivery of the consumer went to another subscriber")

// divertedWait is the pause before that restart: the other subscriber's pull requests expire
// within the pull expiry (10 s), and each restart that meets one of them again costs a reset.
const divertedWait = time.Second

// inSequence reports whether a message's delivery sequence follows the last one this run received.
// JetStream numbers a consumer's deliveries 1, 2, 3… from the reset. A gap means that a delivery
// never reached this run: it went to another subscriber of the same consumer (the pull requests of
// a gateway frozen past its lease stay open on the server until they expire), or was lost in
// transit. It comes back only after AckWait, and reappearing out of turn it would be acked unsent,
// as after a reconnect. So the run routes nothing more and ends (errDiverted).
// Called by onMessage only.
func (w *worker) inSequence(delivery uint64) bool {
	if w.diverted {
		return false
	}
	if delivery == w.received+1 {
		w.received = delivery
		return true
	}
	w.diverted = true
	w.log.Warn().Uint64("expected", w.received+1).Uint64("got", delivery).
		Msg("deliveries of this endpoint's consumer went to another subscriber (a gateway frozen past its lease?): restarting from the ack floor")
	close(w.divert)
	return false
}
