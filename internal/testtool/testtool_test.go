package testtool_test

import (
	"testing"

	"github.com/quaycast/quaycast/internal/testtool"
)

// recorder is a testing.TB that records whether Fatal or Skip ended the test, without ending
// this one: both stop the caller, as a real test's do.
type recorder struct {
	testing.TB
	ended string
}

type stop struct{}

func (r *recorder) Helper()              {}
func (r *recorder) Fatal(...any)         { r.ended = "failed"; panic(stop{}) }
func (r *recorder) Skip(...any)          { r.ended = "skipped"; panic(stop{}) }
func (r *recorder) Skipf(string, ...any) { r.ended = "skipped"; panic(stop{}) }

func missing(t *testing.T) string {
	r := &recorder{TB: t}
	func() {
		defer func() {
			if p := recover(); p != nil && p != any(stop{}) {
				panic(p)
			}
		}()
		testtool.Missing(r, "needs a tool")
	}()
	return r.ended
}

func TestMissingFailsInCIAndSkipsElsewhere(t *testing.T) {
	for _, tc := range []struct{ ci, want string }{{"true", "failed"}, {"", "skipped"}, {"false", "skipped"}} {
		t.Run("CI="+tc.ci, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			if got := missing(t); got != tc.want {
				t.Errorf("Missing with CI=%q: %s, want %s", tc.ci, got, tc.want)
			}
		})
	}
}
