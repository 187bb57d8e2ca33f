package gateway

import (
	"testing"
	"time"
)

// The consumer listing behind the backlog gauges comes every 15 s up to 1,500 endpoints, then
// stretches with their number.
func TestListEvery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{{0, 15 * time.Second}, {1500, 15 * time.Second}, {3000, 30 * time.Second}, {10_000, 100 * time.Second}} {
		if got := listEvery(15*time.Second, tc.n); got != tc.want {
			t.Errorf("%d consumers: %v, want %v", tc.n, got, tc.want)
		}
	}
}
