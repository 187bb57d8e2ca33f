// Package gateway owns the running gateway: the one process in which NATS meets HTTP. It holds
// the Sender that signs and POSTs events to endpoints, the JSON API (handlers that decode a request, call the service,
// which authorizes and decides it, and encode the answer; event ingest), and Gateway.Run, which
// starts the embedded NATS server or dials an external one, wires the consumer side to the
// sender, the service and the API, and shuts everything down in order.
package gateway
