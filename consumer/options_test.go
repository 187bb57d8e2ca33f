package consumer

import (
	"reflect"
	"testing"

	"github.com/quaycast/quaycast/config"
)

// A zero Options delivers as `quaycast serve` does with no flags: a default written here apart
// from package defaults, and different, fails.
func TestZeroOptionsTakeTheFlagDefaults(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	got := Options{}.withDefaults()
	want := Options{
		MaxInFlight:     cfg.MaxInFlight,
		MaxAckPending:   cfg.MaxAckPending,
		AckWait:         cfg.AckWait,
		RetrySchedule:   cfg.RetrySchedule,
		MaxAttempts:     cfg.MaxAttempts,
		MaxRetryAge:     cfg.MaxRetryAge,
		ShutdownTimeout: cfg.ShutdownTimeout,
		ReconcileEvery:  got.ReconcileEvery, // no flag
		PullExpiry:      got.PullExpiry,     // no flag
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Options{}.withDefaults() =\n%+v\nthe flags' defaults give\n%+v", got, want)
	}
}
