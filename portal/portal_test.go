package portal_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quaycast/quaycast/consumer/natstest"
	"github.com/quaycast/quaycast/portal"
)

// A link opens once; a second redemption, an unknown or malformed code, and a code past its time
// are refused; the bucket holds the hash of a code, never the code.
func TestRedeemOnce(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	_, js := natstest.ConnectJetStream(t, srv)
	ctx := t.Context()
	s, err := portal.Open(ctx, js, 1)
	if err != nil {
		t.Fatal(err)
	}
	code, err := s.Create(ctx, portal.Link{Tenant: "maersk", Expires: time.Now().Add(time.Minute), SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, portal.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil || len(keys) != 1 || strings.Contains(keys[0], code) || strings.Contains(code, keys[0]) {
		t.Fatalf("bucket keys %v (%v) for code %s: want one key, not the code", keys, err, code)
	}
	entry, _ := kv.Get(ctx, keys[0])
	if strings.Contains(string(entry.Value()), code[4:]) {
		t.Fatalf("the bucket's record holds the code: %s", entry.Value())
	}
	l, err := s.Redeem(ctx, code)
	if err != nil || l.Tenant != "maersk" || l.SessionTTL != time.Hour {
		t.Fatalf("redeem: %+v %v", l, err)
	}
	if _, err := s.Redeem(ctx, code); !errors.Is(err, portal.ErrUsed) {
		t.Errorf("second redemption: %v, want ErrUsed", err)
	}
	for _, bad := range []string{"", "qpl_", "qpl_" + strings.Repeat("A", 43), code[:len(code)-1], "../" + code} {
		if _, err := s.Redeem(ctx, bad); !errors.Is(err, portal.ErrUsed) {
			t.Errorf("redeem %q: %v, want ErrUsed", bad, err)
		}
	}
	old, err := s.Create(ctx, portal.Link{Tenant: "maersk", Expires: time.Now().Add(-time.Second), SessionTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Redeem(ctx, old); !errors.Is(err, portal.ErrExpired) {
		t.Errorf("expired link: %v, want ErrExpired", err)
	}
	if _, err := s.Redeem(ctx, old); !errors.Is(err, portal.ErrUsed) {
		t.Errorf("expired link again: %v, want ErrUsed (removed by the first try)", err)
	}
	if _, err := s.Create(ctx, portal.Link{Tenant: "maersk", Expires: time.Now().Add(2 * portal.MaxLinkTTL)}); err == nil {
		t.Error("a link living past the bucket's age limit was stored")
	}
}

// Gateways on separate connections redeem one code at once: exactly one of them wins.
func TestRedeemRace(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	ctx := t.Context()
	const gateways = 8
	stores := make([]*portal.Store, gateways)
	for i := range stores {
		_, js := natstest.ConnectJetStream(t, srv)
		s, err := portal.Open(ctx, js, 1)
		if err != nil {
			t.Fatal(err)
		}
		stores[i] = s
	}
	for round := range 5 {
		code, err := stores[0].Create(ctx, portal.Link{Tenant: "hlag", Expires: time.Now().Add(time.Minute), SessionTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg          sync.WaitGroup
			mu          sync.Mutex
			wins, takes int
		)
		start := make(chan struct{})
		for _, s := range stores {
			wg.Go(func() {
				<-start
				_, err := s.Redeem(ctx, code)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins++
				case errors.Is(err, portal.ErrUsed):
					takes++
				default:
					t.Errorf("redeem: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || takes != gateways-1 {
			t.Errorf("round %d: %d redemptions accepted, %d refused; want 1 and %d", round, wins, takes, gateways-1)
		}
	}
}

// A code never survives in a logged path, whatever its shape; other paths are kept as they are.
func TestRedactPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ path, want string }{
		{"/ui/portal/qpl_abc", "/ui/portal/[redacted]"},
		{"/ui//portal/qpl_abc", "/ui//portal/[redacted]"},
		{"/ui/./portal/qpl_abc", "/ui/./portal/[redacted]"},
		{"/ui/portal/qpl_abc/x", "/ui/portal/[redacted]/x"},
		{"/ui/portal/QPL_abc", "/ui/portal/[redacted]"},
		{"/v1/x;qpl_abc", "/v1/[redacted]"},
		{"/ui/endpoints/ep_1", "/ui/endpoints/ep_1"},
		{"/ui/portal/", "/ui/portal/"},
	} {
		if got := portal.RedactPath(tc.path); got != tc.want {
			t.Errorf("RedactPath(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}
