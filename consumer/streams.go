package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// Names of what the delivery engine keeps in JetStream. The NATS permissions of quaycast's own
// user are made from every package's names (package natsauth): a new stream or bucket goes there too.
const (
	EventsStream    = "QUAYCAST_EVENTS"
	EndpointsBucket = "quaycast_endpoints"
	InvalidStream   = "QUAYCAST_INVALID"
	invalidSubjects = "quaycast.invalid.>"
)

// StreamOptions size the events stream. The zero value is not valid; gateway fills it from config.
type StreamOptions struct {
	MaxAge       time.Duration // retry horizon: events older than this are gone for every endpoint
	MaxBytes     int64         // 0 = no cap; when full, publishes are refused (DiscardNew), never silently dropped
	Duplicates   time.Duration // dedupe window for Nats-Msg-Id
	MaxConsumers int           // one consumer per endpoint (the gateways' watchers have room beside them); nats-server 2.15 defaults to 1000 per stream
	Replicas     int           // 0 = 1
	DeadMaxAge   time.Duration // how long dead letters are kept: 0 = 30 days
}

// Setup creates or updates, idempotently, the events stream, the invalid-events, park and
// dead-letter streams and the endpoint registry bucket. It is safe to call from every gateway at
// start.
func Setup(ctx context.Context, js jetstream.JetStream, o StreamOptions) (jetstream.Stream, jetstream.KeyValue, error) {
	replicas := max(o.Replicas, 1)
	maxBytes := o.MaxBytes
	if maxBytes == 0 {
		maxBytes = -1
	}
	events, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:         EventsStream,
		Description:  "quaycast: business events to deliver to webhook endpoints",
		Subjects:     []string{subjects.StreamSubjects, subjects.ReplayStreamSubjects, subjects.TenantStreamSubjects, subjects.OpsStreamSubjects},
		Retention:    jetstream.LimitsPolicy,
		Storage:      jetstream.FileStorage,
		MaxAge:       o.MaxAge,
		MaxBytes:     maxBytes,
		Discard:      jetstream.DiscardNew,
		Duplicates:   o.Duplicates,
		MaxMsgSize:   subjects.MaxEventBytes + 4096, // room for headers
		MaxConsumers: maxConsumers(o.MaxConsumers),
		Replicas:     replicas,
		AllowDirect:  true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure stream %s: %w", EventsStream, err)
	}
	deadAge := o.DeadMaxAge
	if deadAge <= 0 {
		deadAge = 30 * 24 * time.Hour
	}
	// The records beside the events: file storage, deduplicated and replicated as they are.
	for _, cfg := range []jetstream.StreamConfig{{
		Name:        InvalidStream,
		Description: "quaycast: events set aside because they could not be delivered as published, with the reason",
		Subjects:    []string{invalidSubjects},
		MaxAge:      o.MaxAge,
	}, {
		Name:        ParkStream,
		Description: "quaycast: events parked per endpoint and entity behind a head that waits for its next attempt",
		Subjects:    []string{parkSubjects},
		MaxAge:      o.MaxAge,
		MaxMsgSize:  subjects.MaxEventBytes + 8192, // room for the event's headers and the park's
		// No AllowDirect: a lane reads its park right after writing it, from the leader.
	}, {
		Name:        DeadStream,
		Description: "quaycast: dead letters, events an endpoint did not take, with the reason",
		Subjects:    []string{deadSubjects},
		MaxAge:      deadAge,
		AllowDirect: true,
	}} {
		cfg.Storage, cfg.Duplicates, cfg.Replicas = jetstream.FileStorage, o.Duplicates, replicas
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return nil, nil, fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      EndpointsBucket,
		Description: "quaycast: webhook endpoint registry",
		History:     5,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("ensure bucket %s: %w", EndpointsBucket, err)
	}
	return events, kv, nil
}

// maxConsumers is the events stream's consumer limit for endpoints endpoints: the gateways'
// watchers (sleep.go) come on top.
func maxConsumers(endpoints int) int {
	if endpoints <= 0 {
		return endpoints // the server's default, or none
	}
	return endpoints + WatcherRoom
}

// isNotFound reports the nats.go errors that mean "already gone".
func isNotFound(err error) bool {
	return errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrKeyNotFound)
}

// copyMsg is a copy of an event message on subject, for the park, a tenant or a redelivery: its
// body and headers, but not JetStream's own (msg id, expectations, TTL), which were the
// original's publish instructions and would make the copy's publish fail or be dropped.
func copyMsg(subject string, data []byte, h nats.Header) *nats.Msg {
	m := nats.NewMsg(subject)
	m.Data = data
	for k, v := range h {
		if !strings.HasPrefix(k, "Nats-") {
			m.Header[k] = v
		}
	}
	return m
}
