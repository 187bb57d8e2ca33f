// Package consumer owns everything that touches JetStream: the events stream and the endpoint
// registry bucket, one durable pull consumer per endpoint, the per-entity lanes that keep each
// entity's events in order, and the ack decision after each delivery.
//
// The delivery itself (signing, HTTP) is behind the small Deliverer interface, implemented in
// package gateway; this package never imports net/http.
package consumer
