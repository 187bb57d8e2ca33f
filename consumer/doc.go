// Package consumer is the delivery engine: it takes each endpoint's events off JetStream and
// hands them on in order per entity, at least once. It holds the events stream and the endpoint
// registry bucket, one durable pull consumer per endpoint, the per-entity lanes that keep each
// entity's events in order, and the ack decision after each delivery.
//
// The delivery itself (signing, HTTP) is behind the small Deliverer interface, implemented in
// package gateway; this package never imports net/http.
package consumer
