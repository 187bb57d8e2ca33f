package defaults_test

import (
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/defaults"
)

// A field left at zero, or set below it, takes the default; one set keeps its value.
func TestFill(t *testing.T) {
	t.Parallel()
	for _, v := range []time.Duration{0, -time.Second} {
		got := v
		defaults.Fill(&got, time.Minute)
		if got != time.Minute {
			t.Errorf("Fill(%v, 1m) left %v, want the default", v, got)
		}
	}
	set := uint32(3)
	defaults.Fill(&set, 7)
	if set != 3 {
		t.Errorf("Fill of a set field changed it to %d", set)
	}
}
