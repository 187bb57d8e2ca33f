package consumer

import "time"

// Options tune delivery for every endpoint. The zero value of each field takes the default
// written beside it.
type Options struct {
	MaxInFlight     int             // deliveries in flight at once per endpoint, across entities: 64
	MaxAckPending   int             // events held per endpoint, in flight or queued: 1000
	AckWait         time.Duration   // JetStream redelivers what is not acked or kept alive within it: 60s
	RetrySchedule   []time.Duration // waits between attempts, the last repeating: 5s 30s 2m 10m 30m 1h
	MaxAttempts     int             // POSTs of one event before it is dead-lettered: 0 = no limit but MaxRetryAge
	MaxRetryAge     time.Duration   // time from an event's first attempt after which it is dead-lettered: 24h
	ShutdownTimeout time.Duration   // how long in-flight deliveries may finish at shutdown: 15s
	ReconcileEvery  time.Duration   // how often an endpoint whose consumer could not be set up is tried again: 5s
	ExpiryMargin    time.Duration   // an event still undelivered this close to the stream's max age is dead-lettered: min(max age/10, 1h)
	Marks           *Marks          // the durable delivery record; nil keeps marks in memory only
}

func (o Options) withDefaults() Options {
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 1000
	}
	if o.AckWait <= 0 {
		o.AckWait = time.Minute
	}
	if len(o.RetrySchedule) == 0 {
		o.RetrySchedule = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}
	}
	if o.MaxRetryAge <= 0 {
		o.MaxRetryAge = 24 * time.Hour
	}
	if o.ReconcileEvery <= 0 {
		o.ReconcileEvery = 5 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	return o
}
