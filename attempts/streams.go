package attempts

import (
	"context"
	"fmt"
	"github.com/quaycast/quaycast/internal/defaults"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The streams of the delivery log and of receivers' replies; both are kept --log-max-age.
const (
	LogStream       = "QUAYCAST_ATTEMPTS"
	logSubjects     = "quaycast.attempts.>"
	RepliesStream   = "QUAYCAST_REPLIES"
	repliesSubjects = ReplyPrefix + ">"
)

// Streams lists the streams this package keeps; quaycast's NATS permissions are made from it
// (package natsauth).
var Streams = []string{LogStream, RepliesStream}

// StreamOptions size the streams of the log and the replies.
type StreamOptions struct {
	MaxAge   time.Duration // how long records and replies are kept: 0 = defaults.LogMaxAge
	Replicas int           // 0 = 1
}

// Setup creates or updates, idempotently, the streams of the delivery log and the receivers'
// replies. It is safe to call from every gateway at start.
func Setup(ctx context.Context, js jetstream.JetStream, o StreamOptions) error {
	age := o.MaxAge
	defaults.Fill(&age, defaults.LogMaxAge)
	for _, sc := range []jetstream.StreamConfig{
		{Name: LogStream, Description: "quaycast: delivery log, one record per POST", Subjects: []string{logSubjects}},
		{Name: RepliesStream, Description: "quaycast: receivers' replies to deliveries", Subjects: []string{repliesSubjects}},
	} {
		sc.Storage, sc.MaxAge, sc.Replicas, sc.AllowDirect = jetstream.FileStorage, age, max(o.Replicas, 1), true
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("ensure stream %s: %w", sc.Name, err)
		}
	}
	return nil
}
