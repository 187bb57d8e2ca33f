package attempts

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quaycast/quaycast/subjects"
)

// ReplyPrefix starts the subjects of receivers' replies.
const ReplyPrefix = "quaycast.reply."

// Headers of a stored reply, besides subjects.HeaderEntity.
const (
	hdrDeliveryID = "Quaycast-Delivery-Id"
	hdrEndpoint   = "Quaycast-Endpoint"
)

// PublishReply stores a receiver's reply to a delivery on
// quaycast.reply.<source>.<endpoint>.<type>.<entity>, with the delivery id in a header, for
// upstream systems to consume. The source comes first so that a publisher's NATS credential can
// be limited to the replies to its own events (quaycast.reply.<source>.>).
func PublishReply(js jetstream.JetStream, source, endpointID, typ, entity, deliveryID string, body []byte) error {
	m := nats.NewMsg(ReplyPrefix + source + "." + subjects.EncodeToken(endpointID) + "." + typ + "." + subjects.EncodeToken(entity))
	m.Data = body
	m.Header.Set(hdrDeliveryID, deliveryID)
	m.Header.Set(hdrEndpoint, endpointID)
	m.Header.Set(subjects.HeaderEntity, entity)
	if _, err := js.PublishMsgAsync(m); err != nil {
		return fmt.Errorf("publish reply of %s to %s: %w", deliveryID, endpointID, err)
	}
	return nil
}
