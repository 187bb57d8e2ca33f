package consumer

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/internal/backoff"
)

// pullExpiry is how long one pull request waits on the server for events: an idle endpoint costs
// one request per expiry. A reconnect restarts the worker, so a request lost with the old
// connection does not hold the endpoint back for this long.
const pullExpiry = 10 * time.Second

// startPulling fetches the consumer's events and hands them to handle in delivery order, one pull
// request at a time, until ctx ends. The returned function stops it and returns once handle will
// not be called again; what was fetched and not handled stays unacknowledged for the next run.
//
// Each request is a Fetch, which ends by itself: its batch full, or expired. nats.go's Consume
// instead keeps a running count of what it has asked for and pulls again below half of it. In 12
// of 15 bench runs at 10 endpoints that count drifted from the server's: the client waited on a
// request the server no longer had (num_waiting 0, events pending) until the missed-heartbeat
// check renewed it, 6–10 s later. A bare Consume loop with no quaycast code stalled the same way
// (notes §7).
func (w *worker) startPulling(ctx context.Context, cons jetstream.Consumer, handle func(jetstream.Msg)) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		batch := min(w.o.MaxAckPending, 256)
		retry := backoff.Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}
		for ctx.Err() == nil {
			err := w.fetch(ctx, cons, batch, handle)
			if err == nil || ctx.Err() != nil {
				retry.Reset()
				continue
			}
			if !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrConnectionDraining) {
				w.log.Warn().Err(err).Msg("pull events")
			}
			if backoff.Sleep(ctx, retry.Next()) != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// fetch makes one pull request of up to batch events and hands each to handle as it arrives.
func (w *worker) fetch(ctx context.Context, cons jetstream.Consumer, batch int, handle func(jetstream.Msg)) error {
	fctx, cancel := context.WithTimeout(ctx, pullExpiry) // the server's expiry is set just below it
	defer cancel()
	msgs, err := cons.Fetch(batch, jetstream.FetchContext(fctx))
	if err != nil {
		return err
	}
	for msg := range msgs.Messages() {
		if ctx.Err() != nil {
			return nil // stopping: the rest stays unacknowledged for the next run
		}
		handle(msg)
	}
	if err := msgs.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
