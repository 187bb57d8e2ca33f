package gateway_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/quaycast/quaycast/internal/testwait"
)

// The gateway writes the delivery log, and renews its cluster lease, each on a connection of its
// own beside the one it pulls and acknowledges events on: under load (20,000 entities) thousands
// of acks waiting for their confirmation queued behind the log's publishes on one connection's
// lock, and waking 10,000 endpoints made the lease's renewal miss its deadline.
func TestLogAndLeaseHaveTheirOwnConnections(t *testing.T) {
	t.Parallel()
	ns, _, _, recv, ep := startOnExternalNATS(t)

	want := map[string][]string{}
	publishNATS(t, externalNATS(ns.ClientURL()), spread(want, "conn-%02d", 0, 10, 2)...)
	recv.waitCount(t, 10)
	waitDrained(t, externalNATS(ns.ClientURL()), ep.ID)

	// The server counts what each connection sent (in_msgs, as the server sees it).
	sent := func() map[string]int64 {
		cz, err := ns.Connz(&server.ConnzOptions{})
		if err != nil {
			t.Fatalf("connz: %v", err)
		}
		by := map[string]int64{}
		for _, c := range cz.Conns {
			by[c.Name] += c.InMsgs
		}
		return by
	}
	// quaycast's connection sent a pull and an ack per event at least; the log's, a record each;
	// the lease's, the join and a renewal (every TTL/10, 1.5 s by default) at least.
	testwait.For(t, 10*time.Second, "log records and lease renewals on their own connections", func() bool {
		by := sent()
		return by["quaycast-delivery-log"] >= 10 && by["quaycast"] >= 20 && by["quaycast-cluster-lease"] >= 2
	})
}
