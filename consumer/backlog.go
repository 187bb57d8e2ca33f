package consumer

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
)

// Backlogs is each endpoint's backlog — events not yet acknowledged: pending in the stream and
// held by a gateway — from one paged listing of the events stream's consumers.
func Backlogs(ctx context.Context, events jetstream.Stream) (map[string]uint64, error) {
	out := map[string]uint64{}
	list := events.ListConsumers(ctx)
	for ci := range list.Info() {
		if id := ci.Config.Metadata["quaycast_endpoint"]; id != "" {
			out[id] = ci.NumPending + uint64(ci.NumAckPending)
		}
	}
	if err := list.Err(); err != nil {
		return nil, fmt.Errorf("list consumers: %w", err)
	}
	return out, nil
}
