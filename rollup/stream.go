package rollup

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Stream keeps the minute records: an hour's figures are read from it, with room for a late
// minute and for clocks a little apart.
const (
	Stream        = "QUAYCAST_ROLLUPS"
	subjectPrefix = "quaycast.rollups."
	MaxAge        = 90 * time.Minute
)

// Setup creates or updates, idempotently, the stream of the minute records; safe from every
// gateway at start.
func Setup(ctx context.Context, js jetstream.JetStream, replicas int) error {
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "quaycast: per-endpoint delivery figures, one record per endpoint with traffic per minute",
		Subjects:    []string{subjectPrefix + ">"},
		Storage:     jetstream.FileStorage,
		MaxAge:      MaxAge,
		Duplicates:  2 * time.Minute,
		Replicas:    max(replicas, 1),
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", Stream, err)
	}
	return nil
}
