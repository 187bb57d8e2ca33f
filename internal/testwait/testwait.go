package testwait

import (
	"testing"
	"time"
)

// For polls cond every 10 ms until it holds, and fails the test if it does not within timeout;
// what names the outcome waited for.
func For(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
