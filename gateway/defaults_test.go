package gateway

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/defaults"
)

// Zero SenderOptions and BreakerOptions send as `quaycast serve` does with no flags: a default
// written here apart from package defaults, and different, fails.
func TestZeroOptionsTakeTheFlagDefaults(t *testing.T) {
	t.Parallel()
	cfg := config.Default()
	wantBreaker := BreakerOptions{
		ConsecutiveFailures: cfg.BreakerFailures,
		FailureRatio:        cfg.BreakerRatio,
		MinRequests:         cfg.BreakerMinRequests,
		Window:              cfg.BreakerWindow,
		Cooldown:            cfg.BreakerCooldown,
		FirstProbe:          defaults.BreakerFirstProbe, // no flag: --breaker-cooldown caps it
	}
	if got := (BreakerOptions{}).withDefaults(); got != wantBreaker {
		t.Errorf("BreakerOptions{}.withDefaults() = %+v, the flags' defaults give %+v", got, wantBreaker)
	}
	o := NewSender(zerolog.Nop(), SenderOptions{}).o
	for _, c := range []struct {
		flag      string
		got, want int64
	}{
		{"delivery-timeout", int64(o.Timeout), int64(cfg.DeliveryTimeout)},
		{"max-reply-bytes", o.MaxResponseBytes, int64(cfg.MaxReplyBytes)},
		{"reply-memory", o.MaxReplyMemory, int64(cfg.ReplyMemory)},
		{"max-in-flight-total", int64(o.MaxInFlight), int64(cfg.MaxInFlightTotal)},
	} {
		if c.got != c.want {
			t.Errorf("zero SenderOptions: %d for --%s, whose default is %d", c.got, c.flag, c.want)
		}
	}
	if o.Breaker != wantBreaker {
		t.Errorf("zero SenderOptions: breaker %+v, the flags' defaults give %+v", o.Breaker, wantBreaker)
	}
}
