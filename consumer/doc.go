// Package consumer is the delivery engine: it owns taking events off JetStream to the endpoints —
// the events stream and the endpoint registry bucket, one durable pull consumer per endpoint, the
// per-entity lanes that keep each entity's events in order, parking, dead letters, the durable
// delivery marks, and the ack decision after each delivery.
//
// The delivery itself (signing, HTTP) is behind the small Deliverer interface, implemented in
// package gateway; this package never imports net/http. Records that are not delivery live in
// packages of their own: API tokens in tokens, the delivery log and receivers' replies in attempts.
package consumer
