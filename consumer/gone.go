package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A running endpoint's consumer can vanish under it: deleted by hand (`nats consumer rm`), by a
// bug, or with a server's state. Its worker's pull requests then end with 503 (no responders)
// or 409 Consumer Deleted, and without this it would pull in vain until someone edited the
// endpoint. The worker ends its run, and the manager makes the consumer again from the
// endpoint's start sequence: the marks (progress) skip every event already delivered, so nothing
// is lost or sent twice.

// errNoConsumer: a pull request found no consumer to answer it.
var errNoConsumer = errors.New("no consumer answers")

// errConsumerGone ends a run whose consumer does not exist.
var errConsumerGone = errors.New("consumer deleted")

// consumerGone reports whether the consumer name does not exist. A 503 alone does not say so:
// in a cluster a consumer between leaders has no one to answer either, and the server's
// not-found answer is the proof.
func (w *worker) consumerGone(ctx context.Context, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := w.stream.Consumer(ctx, name)
	return isNotFound(err)
}

// remake makes the consumer of a running endpoint again after it was deleted, unless the
// endpoint was deleted or stopped here meanwhile.
func (m *Manager) remake(ctx context.Context, id string, rw *runningWorker) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := m.reg.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		// Deleted: another gateway of a cluster may delete its consumer before this one's watch
		// stops the worker, which it does soon. Nothing to make, nor to warn of.
		return nil
	}
	if err != nil {
		return fmt.Errorf("read endpoint: %w", err)
	}
	m.mu.Lock()
	running, ep, filters := m.running[id] == rw, rw.w.ep.Load(), rw.filters
	m.mu.Unlock()
	if !running {
		return nil
	}
	if _, err := m.stream.CreateOrUpdateConsumer(ctx, m.consumerConfig(ep, filters)); err != nil {
		return fmt.Errorf("create consumer %s: %w", ep.ConsumerName(), err)
	}
	m.log.Warn().Str("endpoint_id", id).Uint64("from_seq", max(ep.StartSeq, 1)).
		Msg("consumer was deleted under its endpoint: made again from the endpoint's start; events already delivered are skipped")
	return nil
}
