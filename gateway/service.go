package gateway

import (
	"context"
	"encoding/json"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/service"
)

// The delivery side as the service drives it.

// serviceSender is the Sender for the service: a test send's attempt comes back as the delivery
// log's JSON record.
type serviceSender struct{ *Sender }

var _ service.Sender = serviceSender{}

func (s serviceSender) Test(ctx context.Context, d *consumer.Delivery) (json.RawMessage, error) {
	a, err := s.Sender.Test(ctx, d)
	if err != nil {
		return nil, err
	}
	return json.Marshal(a)
}

// endpointRules are the sender's checks of an endpoint definition: the target policy, and the
// headers it writes itself.
type endpointRules struct{ TargetPolicy }

var _ service.Rules = endpointRules{}

func (endpointRules) CheckHeaders(ep *consumer.Endpoint) error { return checkHeaders(ep) }
