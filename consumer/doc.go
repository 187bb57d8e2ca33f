// Package consumer is the delivery engine: it takes each endpoint's events off JetStream and
// hands them on in order per entity, at least once. It holds the events stream and the endpoint
// registry bucket, one durable pull consumer per endpoint, the per-entity lanes that keep each
// entity's events in order, parking, dead letters, the durable delivery marks, and the ack
// decision after each delivery. With several gateways it runs only the endpoints it is told to
// own (ownership.go; package cluster decides). An endpoint caught up and quiet sleeps: no
// goroutine, subscription or pull request, until one watcher of the events stream per gateway
// sees an event for it (sleep.go).
//
// The delivery itself (signing, HTTP) is behind the small Deliverer interface, implemented in
// package gateway; this package never imports net/http. Records that are not delivery live in
// packages of their own: API tokens in tokens, the delivery log and receivers' replies in attempts.
package consumer
