package defaults

import "time"

// Where the gateway keeps its data and listens.
const (
	DataDir     = "./data"         // the embedded NATS server's JetStream store
	NATSListen  = "127.0.0.1:4222" // the embedded NATS server, for publishers
	Listen      = "127.0.0.1:8080" // the HTTP API
	PprofListen = ""               // net/http/pprof on a listener of its own: off
)

// Several gateways on one NATS cluster.
const (
	Replicas = 1                // copies of every stream and bucket: 3 on a three-node cluster
	Deliver  = true             // false: the API only
	LeaseTTL = 20 * time.Second // a member that stopped renewing this long is gone
)

// The events stream and the records beside it.
const (
	StreamMaxAge    = 168 * time.Hour // how long events are kept: the retry horizon
	StreamMaxBytes  = 0               // size cap of the events stream: 0 = none
	DuplicateWindow = 2 * time.Minute // a publish with an event id seen within it is dropped
	DeliveryLog     = "all"           // which POSTs the delivery log records
	LogMaxAge       = 72 * time.Hour  // how long the delivery log and receivers' replies are kept
	MaxEndpoints    = 100_000         // consumer limit of the events stream
)

// Delivery.
const (
	MaxInFlight      = 64               // per endpoint: deliveries in flight at once, across entities
	MaxInFlightTotal = 1024             // deliveries in flight at once over all endpoints
	MaxAckPending    = 1000             // per endpoint: events held, in flight or queued
	AckWait          = 60 * time.Second // JetStream redelivers what is not acked or kept alive within it
	MaxReplyBytes    = 64 << 10         // largest receiver's reply read and passed on
	ReplyMemory      = 32 << 20         // receivers' replies held at once, over all deliveries
	DeliveryTimeout  = 10 * time.Second // one POST
	MaxAttempts      = 0                // POSTs of one event before it is dead-lettered: 0 = no limit but MaxRetryAge
	MarksFlush       = time.Second      // how often the durable delivery record is written
	MaxRetryAge      = 24 * time.Hour   // an event still failing this long after its first attempt is dead-lettered
	ShutdownTimeout  = 15 * time.Second // how long in-flight deliveries may finish at shutdown
	NATSStopTimeout  = 3 * time.Second  // how long the embedded NATS server may take to stop after the gateway
)

// Tenants: limits per tenant, so that one of the operator's customers cannot take the gateway
// from the others.
const (
	TenantMaxEndpoints = 100   // endpoints one tenant may have
	TenantRate         = 200.0 // POSTs per second to one tenant's endpoints together, on each gateway: 0 = no limit
	TenantBurst        = 400   // POSTs above TenantRate one tenant may make at once after a quiet spell
)

// The console and the tenants' portal.
const (
	ConsoleFrameAncestors = "'none'"        // who may frame the portal's pages (CSP frame-ancestors): nobody
	PortalSessionTTL      = time.Hour       // how long a portal session opened by a link lasts
	PortalLinkTTL         = 5 * time.Minute // how long a portal link can be redeemed

	MaxPortalSessionTTL = 24 * time.Hour // the longest portal session, by the flag or a link
)

// Fill sets *v to d when it is zero (or less): an Options field left at zero takes its default.
func Fill[T ~int | ~int64 | ~uint32 | ~float64](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// RetrySchedule returns the waits between attempts, the last repeating; a new slice each call,
// so that no caller can change another's.
func RetrySchedule() []time.Duration {
	return []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}
}

// An endpoint's circuit breaker.
const (
	BreakerFailures    = 5                      // failed attempts in a row that open it
	BreakerRatio       = 0.5                    // or this share of failed attempts within BreakerWindow ...
	BreakerMinRequests = 20                     // ... once the window holds at least this many attempts
	BreakerWindow      = 60 * time.Second       // rolling window of the ratio
	BreakerCooldown    = 30 * time.Second       // the longest wait between probes of an open breaker
	BreakerFirstProbe  = 500 * time.Millisecond // the first wait, growing ×1.25 per failed probe up to BreakerCooldown
)

// Logging.
const (
	LogLevel  = "info"
	LogFormat = "auto"
)
