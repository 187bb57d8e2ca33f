// Package cluster owns which gateway delivers to which endpoint: gateways join as members by a
// lease in NATS, the endpoints are spread over the live members, and a member that cannot renew
// its lease stops posting before any other may start.
//
// Two KV buckets hold it all, so gateways stay stateless and NATS (replicated on a cluster) is
// the only thing that has to agree:
//
//   - quaycast_members: one key per member session, renewed every TTL/10; the bucket's TTL
//     removes a member that stopped renewing (a delete marker tells the others at once).
//   - quaycast_owners: one key per endpoint naming the session that delivers to it. A session
//     takes a key by compare-and-set only when it is free (deleted, or naming a session whose
//     lease has expired), so at most one gateway runs an endpoint's consumer at a time.
//
// Fencing. A member's lease is valid, in its own eyes, until the send time of its last successful
// renewal plus RenewDeadline (3/4 of the TTL); NATS removes it no earlier than that send time
// plus the TTL. Between the two lie 1/4 of the TTL, the time to cancel POSTs in flight, and the
// margin for the two clocks' rates (not their offsets: each side measures its own interval). A
// member past its deadline starts no POST (the delivery engine asks Held before each) and stops
// all its endpoints; it then joins again as a new session that owns nothing. A new owner
// resets the endpoint's consumer to its ack floor before delivering (consumer.worker.run).
package cluster
