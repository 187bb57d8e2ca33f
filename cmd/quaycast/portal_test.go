package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// quaycast tenants portal-link prints a link under --public-url, for the time asked.
func TestTenantsPortalLinkCLI(t *testing.T) {
	t.Parallel()
	const admin = "admin-token-0123456789"
	p := serve(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--admin-token", admin,
		"--public-url", "https://hooks.example.com/", "--console-frame-ancestors", "https://app.example.com")
	run(t, "tenants", "create", "--api", p.api, "--token", admin, "--id", "maersk", "--name", "Maersk Line")
	out := run(t, "tenants", "portal-link", "--api", p.api, "--token", admin, "maersk", "--ttl", "2m")
	var l struct {
		URL       string    `json:"url"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("portal-link printed %q: %v", out, err)
	}
	if !strings.HasPrefix(l.URL, "https://hooks.example.com/ui/portal/qpl_") || time.Until(l.ExpiresAt) > 2*time.Minute || time.Until(l.ExpiresAt) < time.Minute {
		t.Errorf("link %s until %s: want one under --public-url for 2 minutes", l.URL, l.ExpiresAt)
	}
}

// A frame-ancestors list that would let any site frame the portal, or is not a source list, stops
// the gateway at start, naming the flag.
func TestConsoleFrameAncestorsChecked(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"*", "'none' https://app.example.com", "https://app.example.com; script-src *", "ftp://app.example.com", "https://a.*.example.com"} {
		stderr, code := serveUntilExit(t, "--data-dir", t.TempDir(), "--nats-listen", "127.0.0.1:0", "--console-frame-ancestors", bad)
		if code == 0 || !strings.Contains(stderr, "--console-frame-ancestors") {
			t.Errorf("--console-frame-ancestors %q: exit %d, stderr %q; want a refusal naming the flag", bad, code, stderr)
		}
	}
}
