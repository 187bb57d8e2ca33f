package testwait_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/testwait"
)

// recorder is a testing.TB whose Fatalf records the failure and ends the caller, as a real
// test's does, without failing this test.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = fmt.Sprintf(format, args...)
	panic(r)
}

// waitFor runs testwait.For on a recorder and returns its failure, "" if none.
func waitFor(t *testing.T, timeout time.Duration, cond func() bool) (failed string) {
	r := &recorder{TB: t}
	defer func() {
		if p := recover(); p != nil && p != any(r) {
			panic(p)
		}
		failed = r.failed
	}()
	testwait.For(r, timeout, "the thing", cond)
	return ""
}

func TestForReturnsOnceTheConditionHolds(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	if failed := waitFor(t, time.Minute, func() bool { return calls.Add(1) == 3 }); failed != "" {
		t.Fatalf("failed: %s", failed)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("condition asked %d times, want 3 (until it held)", n)
	}
}

func TestForFailsAfterTheTimeout(t *testing.T) {
	t.Parallel()
	failed := waitFor(t, 30*time.Millisecond, func() bool { return false })
	if !strings.Contains(failed, "30ms") || !strings.Contains(failed, "the thing") {
		t.Errorf("failure %q, want the timeout and what was waited for", failed)
	}
}
