package backoff_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quaycast/quaycast/internal/backoff"
)

func TestNext(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		name string
		b    backoff.Backoff
		want []time.Duration
	}{
		{"doubles up to the cap", backoff.Backoff{First: s, Max: 15 * s}, []time.Duration{s, 2 * s, 4 * s, 8 * s, 15 * s, 15 * s}},
		{"no cap", backoff.Backoff{First: 100 * time.Millisecond}, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}},
		{"a cap below the first wait", backoff.Backoff{First: 2 * s, Max: s}, []time.Duration{s, s, s}},
		{"a cap equal to the first wait", backoff.Backoff{First: s, Max: s}, []time.Duration{s, s}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			for i, want := range tc.want {
				if got := b.Next(); got != want {
					t.Fatalf("wait %d = %s, want %s", i+1, got, want)
				}
			}
		})
	}
}

func TestResetStartsAgain(t *testing.T) {
	t.Parallel()
	b := backoff.Backoff{First: time.Second, Max: time.Minute}
	b.Next()
	b.Next()
	b.Reset()
	if got := b.Next(); got != time.Second {
		t.Errorf("after Reset the wait is %s, want 1s", got)
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	if err := backoff.Sleep(t.Context(), time.Millisecond); err != nil {
		t.Errorf("a short sleep: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := backoff.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("a sleep whose ctx ended: %v, want context.Canceled", err)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	if !backoff.Wait(make(chan struct{}), time.Millisecond) {
		t.Error("a short wait whose stop stays open returned false")
	}
	stop := make(chan struct{})
	close(stop)
	if backoff.Wait(stop, time.Hour) {
		t.Error("a wait whose stop is closed returned true")
	}
}
