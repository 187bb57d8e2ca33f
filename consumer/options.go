package consumer

import (
	"time"

	"github.com/quaycast/quaycast/internal/defaults"
)

// Options tune delivery for every endpoint. The zero value of each field takes the default
// named beside it: the constant of package defaults that the flag of the same name shows.
type Options struct {
	MaxInFlight     int             // deliveries in flight at once per endpoint, across entities: defaults.MaxInFlight
	MaxAckPending   int             // events held per endpoint, in flight or queued: defaults.MaxAckPending
	AckWait         time.Duration   // JetStream redelivers what is not acked or kept alive within it: defaults.AckWait
	RetrySchedule   []time.Duration // waits between attempts, the last repeating: defaults.RetrySchedule
	MaxAttempts     int             // POSTs of one event before it is dead-lettered: 0 = no limit but MaxRetryAge
	MaxRetryAge     time.Duration   // time from an event's first attempt after which it is dead-lettered: defaults.MaxRetryAge
	ShutdownTimeout time.Duration   // how long in-flight deliveries may finish at shutdown: defaults.ShutdownTimeout
	ReconcileEvery  time.Duration   // how often an endpoint whose consumer could not be set up is tried again: 5s
	ExpiryMargin    time.Duration   // an event still undelivered this close to the stream's max age is dead-lettered: min(max age/10, 1h)
	PullExpiry      time.Duration   // how long one pull request waits on the server; two in a row with nothing and a quiet endpoint sleeps: 10s
	Marks           *Marks          // the durable delivery record; nil keeps marks in memory only
	Catalogue       Catalogue       // the live event catalogue; nil: the built-in types only
	// TenantRate is the POSTs per second to one tenant's endpoints together; 0 is no limit (the
	// gateway passes --tenant-rate, whose default is defaults.TenantRate). TenantBurst: at least 1.
	TenantRate  float64
	TenantBurst int
}

func (o Options) withDefaults() Options {
	defaults.Fill(&o.MaxInFlight, defaults.MaxInFlight)
	defaults.Fill(&o.MaxAckPending, defaults.MaxAckPending)
	defaults.Fill(&o.AckWait, defaults.AckWait)
	if len(o.RetrySchedule) == 0 {
		o.RetrySchedule = defaults.RetrySchedule()
	}
	defaults.Fill(&o.MaxRetryAge, defaults.MaxRetryAge)
	defaults.Fill(&o.ReconcileEvery, 5*time.Second)
	defaults.Fill(&o.PullExpiry, pullExpiry)
	defaults.Fill(&o.ShutdownTimeout, defaults.ShutdownTimeout)
	return o
}
