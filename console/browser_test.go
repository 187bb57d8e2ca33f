package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/quaycast/quaycast/internal/browsertest"
	"github.com/quaycast/quaycast/internal/testtool"
	"github.com/quaycast/quaycast/internal/testwait"
	"github.com/quaycast/quaycast/rollup"
	"github.com/quaycast/quaycast/subjects"
)

// axeSource is axe-core's script, installed with npm ci from testdata's lock file into a cache
// directory kept between runs (one install per lock file).
func axeSource(t *testing.T) string {
	t.Helper()
	lock, err := os.ReadFile("testdata/package-lock.json")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "quaycast-tests", "axe-"+hex.EncodeToString(sum[:8]))
	script := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(script); err != nil {
		if _, err := exec.LookPath("npm"); err != nil {
			testtool.Missing(t, "needs npm to install axe-core (apt-get install npm)")
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join("testdata", f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command("npm", "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput(); err != nil {
			testtool.Missing(t, fmt.Sprintf("npm ci axe-core: %v\n%s", err, out))
		}
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// tab is the browser with what a test checks on every page.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	axe  string

	mu       sync.Mutex
	problems []string // CSP violations and script errors the browser reported
}

func newTab(t *testing.T, base string) *tab {
	tb := &tab{t: t, ctx: browsertest.New(t), base: base, axe: axeSource(t)}
	// The browser's console and log: a refused script or style (CSP), or a script error.
	messages := chromedp.Console(tb.ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException || strings.Contains(m.Text, "Content Security Policy") {
				tb.report(string(m.Type) + ": " + m.Text)
			}
		}
	}()
	return tb
}

func (tb *tab) report(s string) {
	tb.mu.Lock()
	tb.problems = append(tb.problems, s)
	tb.mu.Unlock()
}

// run runs actions, failing the test on an error; bounded so a hung page ends the test.
func (tb *tab) run(actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
}

// get runs one action that answers a value.
func get[T any](tb *tab, a chromedp.Action[T]) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.t.Fatalf("browser: %v", err)
	}
	return v
}

// eval evaluates a script expression in the page, awaiting a promise.
func eval[T any](tb *tab, expr string) T {
	tb.t.Helper()
	return get(tb, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

func (tb *tab) open(path string) {
	tb.t.Helper()
	tb.run(chromedp.Navigate(tb.base+path), chromedp.WaitReady(chromedp.CSS("body")))
	// Confirmations are answered yes: the test clicks what a person would confirm.
	eval[any](tb, `window.confirm = () => true`)
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	return get(tb, chromedp.Text(chromedp.CSS(sel)))
}

func (tb *tab) path() string { return eval[string](tb, `location.pathname + location.search`) }

// check holds the page to the quality bar: no serious or critical axe-core violation, no
// horizontal scroll at 375 px, and no script the page's CSP refused or that failed.
func (tb *tab) check(name string) {
	tb.t.Helper()
	if !eval[bool](tb, `typeof axe !== "undefined"`) {
		eval[any](tb, tb.axe+";true")
	}
	violations := eval[[]string](tb, `axe.run(document, {resultTypes: ["violations"]}).then(r => r.violations
		.filter(v => v.impact === "serious" || v.impact === "critical")
		.map(v => v.id + " (" + v.impact + "): " + v.help + " at " + v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")))`)
	for _, v := range violations {
		tb.t.Errorf("%s: axe: %s", name, v)
	}
	tb.run(chromedp.EmulateViewport(375, 740))
	scroll := eval[struct{ Scroll, Client int }](tb, `({Scroll: document.documentElement.scrollWidth, Client: document.documentElement.clientWidth})`)
	tb.run(chromedp.EmulateViewport(1024, 768))
	if scroll.Scroll > scroll.Client {
		tb.t.Errorf("%s at 375 px: %d px wide in a %d px window, a horizontal scroll", name, scroll.Scroll, scroll.Client)
	}
	tb.mu.Lock()
	for _, p := range tb.problems {
		tb.t.Errorf("%s: %s", name, p)
	}
	tb.problems = nil
	tb.mu.Unlock()
}

// screenshot writes the page to $QUAYCAST_SCREENSHOTS/name.png when that is set.
func (tb *tab) screenshot(name string, width int) {
	dir := os.Getenv("QUAYCAST_SCREENSHOTS")
	if dir == "" {
		return
	}
	tb.run(chromedp.EmulateViewport(int64(width), 800))
	png := get(tb, chromedp.FullScreenshot(100))
	tb.run(chromedp.EmulateViewport(1024, 768))
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		tb.t.Error(err)
	}
}

// press sends key presses; focusOn tabs until the element matching sel has the focus.
func (tb *tab) press(keys string) { tb.t.Helper(); tb.run(chromedp.KeyEvent(keys)) }

func (tb *tab) focusOn(sel string) {
	tb.t.Helper()
	for range 80 {
		if eval[bool](tb, `!!document.activeElement && document.activeElement.matches(`+jsString(sel)+`)`) {
			return
		}
		tb.press(kb.Tab)
	}
	tb.t.Fatalf("tabbing never reached %s", sel)
}

func jsString(s string) string { b, _ := json.Marshal(s); return string(b) }

// The console in a real browser: sign in, create an endpoint with the keyboard alone, see its
// deliveries and one attempt's detail, send a test, replay dead letters, rotate the secret,
// follow the live page, and as a read-only token find no edit controls and be refused; every
// page passes axe-core, fits 375 px, and runs no script but the console's own.
func TestConsoleInBrowser(t *testing.T) {
	r := start(t, adminToken)
	tb := newTab(t, r.g.APIURL())
	evil := `<script>window.__xss=1</script>`
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	// Sign in.
	tb.open("/ui/")
	if p := tb.path(); !strings.HasPrefix(p, "/ui/signin") {
		t.Fatalf("without a session the console opened %s, want the sign-in page", p)
	}
	tb.check("sign-in")
	tb.run(chromedp.SendKeys(css("#token"), adminToken), chromedp.Submit(css("#token")), chromedp.WaitVisible(css(`a[href="/ui/endpoints/new"]`)))
	tb.check("endpoints, empty")

	// Create an endpoint with the keyboard alone.
	tb.open("/ui/endpoints/new")
	tb.check("new endpoint form")
	tb.focusOn("#url")
	tb.press(r.rcv.URL + "/hook")
	tb.press(kb.Tab)
	tb.press(evil)
	tb.focusOn("#ev-all")
	tb.press(" ")
	tb.focusOn("#headers")
	tb.press("X-Tenant: " + evil)
	tb.focusOn(`form.card button[type="submit"]`)
	tb.press(kb.Enter)
	tb.run(chromedp.WaitVisible(css("#secret")))
	secret := get(tb, chromedp.Value(css("#secret")))
	if copyShown := eval[bool](tb, `!document.querySelector("[data-copy]").hidden`); !strings.HasPrefix(secret, "whsec_") || !copyShown {
		t.Fatalf("after create: secret %q, copy button shown %v; want the secret and a copy button", secret, copyShown)
	}
	tb.check("secret shown once")
	epID := eval[string](tb, `document.querySelector("main .card a").textContent`)

	// Publish, and see the deliveries and one attempt's detail.
	for _, entity := range []string{"MSCU0000001", "MSCU0000002", "MSCU0000003"} {
		r.publish(t, "cargo_gated_in", entity)
	}
	testwait.For(t, 30*time.Second, "three deliveries in the log", func() bool {
		tb.open("/ui/endpoints/" + epID + "/deliveries")
		return eval[int](tb, `document.querySelectorAll("table.list tbody a[href*='/deliveries/']").length`) == 3
	})
	tb.check("deliveries")
	tb.run(chromedp.Click(css(`table.list tbody a[href*='/deliveries/']`)), chromedp.WaitVisible(css("pre.body")))
	if body := tb.text("main"); !strings.Contains(strings.ToLower(body), "webhook-signature") || !strings.Contains(body, `"entity": "MSCU000000`) || !strings.Contains(body, evil) {
		t.Errorf("attempt detail lacks the signature header, the event body or the custom header shown as text:\n%s", body)
	}
	tb.check("attempt detail")
	tb.screenshot("console-attempt", 1024)

	// Test send.
	tb.open("/ui/endpoints/" + epID + "/test")
	tb.check("test send")
	tb.run(chromedp.Click(css(`form.card button[type="submit"]`)), chromedp.WaitVisible(css("#result")))
	if got := tb.text("#result .outcome"); !strings.Contains(got, "delivered") || !strings.Contains(got, "200") {
		t.Errorf("test send answered %q, want delivered with HTTP 200", got)
	}

	// Redeliver: the form, checked by axe.
	tb.open("/ui/endpoints/" + epID + "/redeliver")
	tb.check("redeliver")

	// A failing endpoint, and its dead letters replayed.
	r.rcv.status.Store(400)
	r.publish(t, "cargo_gated_in", "MSCU0000009")
	testwait.For(t, 30*time.Second, "a dead letter", func() bool {
		tb.open("/ui/endpoints/" + epID + "/dead-letters")
		return eval[int](tb, `document.querySelectorAll("table.list tbody tr").length`) == 1
	})
	tb.check("dead letters")
	r.rcv.status.Store(200)
	before := r.rcv.count()
	tb.run(chromedp.Click(css(`button[name="all"]`)), chromedp.WaitVisible(css(".notice")))
	if got := tb.text(".notice"); !strings.Contains(got, "1 dead letters replayed") {
		t.Errorf("after replay: %q", got)
	}
	testwait.For(t, 30*time.Second, "the replayed event delivered", func() bool { return r.rcv.count() > before })

	// Rotate the secret.
	tb.open("/ui/endpoints/" + epID)
	tb.check("endpoint")
	tb.run(chromedp.Click(css(`form[action$="/rotate"] button`)), chromedp.WaitVisible(css("#secret")))
	if rotated := get(tb, chromedp.Value(css("#secret"))); rotated == "" || rotated == secret {
		t.Errorf("rotated secret %q, want a new one", rotated)
	}

	// An hour of figures, as the gateways publish them each minute; the live page draws them and
	// follows deliveries as they happen.
	publishHour(t, r, epID)
	testwait.For(t, 30*time.Second, "the hour's charts (figures are read again every 10 s)", func() bool {
		tb.open("/ui/live")
		return eval[int](tb, `document.querySelectorAll("svg.chart").length`) == 2
	})
	testwait.For(t, 20*time.Second, "the live stream open", func() bool {
		return strings.Contains(tb.text("#live-status"), "Following")
	})
	tb.check("live")
	r.publish(t, "cargo_gated_in", "MSCU0000042")
	testwait.For(t, 30*time.Second, "the delivery on the live page", func() bool {
		return eval[int](tb, `Array.from(document.querySelectorAll("#live tr.fresh")).filter(tr => tr.textContent.includes("MSCU0000042")).length`) > 0
	})
	tb.open("/ui/endpoints/" + epID)
	tb.run(chromedp.WaitVisible(css("svg.chart")))
	tb.screenshot("console-endpoint", 1024)

	// The other pages.
	for _, p := range []struct{ name, path string }{
		{"endpoints", "/ui/endpoints?sort=success&dir=desc"}, {"edit form", "/ui/endpoints/" + epID + "/edit"},
		{"delete confirmation", "/ui/endpoints/" + epID + "/delete"}, {"purge confirmation", "/ui/endpoints/" + epID + "/dead-letters/purge"},
		{"catalogue", "/ui/catalogue"}, {"tokens", "/ui/tokens"}, {"publishers", "/ui/publishers"}, {"cluster", "/ui/cluster"},
		{"event deliveries", "/ui/events?id=none"},
	} {
		tb.open(p.path)
		tb.check(p.name)
	}
	tb.open("/ui/endpoints")
	tb.screenshot("console-endpoints-phone", 375)

	// What was typed stays text: on every page that showed it, no script of it ran.
	for _, path := range []string{"/ui/endpoints", "/ui/endpoints/" + epID, "/ui/endpoints/" + epID + "/edit"} {
		tb.open(path)
		if eval[bool](tb, `window.__xss !== undefined`) {
			t.Errorf("%s ran a script typed into the form", path)
		}
	}
	if got := get(tb, chromedp.Value(css("#description"))); got != evil {
		t.Errorf("the edit form shows the description as %q, want the typed text %q", got, evil)
	}

	// A read-only token sees no edit controls, and the server refuses its edits.
	var tok struct{ Token string }
	if err := r.api.Do(t.Context(), "POST", "/v1/tokens", map[string]any{"name": "viewer", "scopes": []string{"endpoints:read", "deliveries:read"}}, &tok); err != nil {
		t.Fatal(err)
	}
	tb.run(chromedp.Click(css(`form.signout button`)), chromedp.WaitVisible(css("#token")))
	tb.run(chromedp.SendKeys(css("#token"), tok.Token), chromedp.Submit(css("#token")), chromedp.WaitVisible(css("table.list")))
	tb.open("/ui/endpoints/" + epID)
	if n := eval[int](tb, `document.querySelectorAll('a[href$="/edit"], a[href$="/delete"], form[action$="/enabled"], form[action$="/rotate"], a[href="/ui/endpoints/new"]').length`); n != 0 {
		t.Errorf("a read-only token sees %d edit controls, want none", n)
	}
	tb.check("endpoint, read-only")
	status := eval[int](tb, `fetch("/ui/endpoints/`+epID+`/enabled", {method: "POST", body: new URLSearchParams({csrf: document.querySelector('input[name=csrf]').value, enabled: "false"})}).then(r => r.status)`)
	if status != 403 {
		t.Errorf("a read-only token's post from the page: %d, want 403", status)
	}
	var ep struct{ Enabled bool }
	if err := r.api.Do(t.Context(), "GET", "/v1/endpoints/"+epID, nil, &ep); err != nil || !ep.Enabled {
		t.Errorf("endpoint after the read-only post: enabled=%v (%v), want enabled", ep.Enabled, err)
	}
}

// publishHour stores an hour of minute records for an endpoint, as the delivering gateway
// publishes them: steady traffic, a burst of failures in the middle.
func publishHour(t *testing.T, r *rig, id string) {
	t.Helper()
	js := r.jetStream(t)
	now := time.Now().UTC().Truncate(time.Minute)
	for i := 60; i >= 1; i-- {
		start := now.Add(-time.Duration(i) * time.Minute)
		m := rollup.Minute{EndpointID: id, Start: start, Gateway: "test", Delivered: uint64(600 + 10*(i%7)), MaxMS: 180, LastDelivered: start.Add(59 * time.Second)}
		if i > 25 && i < 30 {
			m.Retry = 120
		}
		m.Latency[3], m.Latency[5], m.Latency[7] = m.Delivered/2, m.Delivered/2, m.Retry
		m.SumMS = float64(m.Delivered) * 20
		b, _ := json.Marshal(m)
		if _, err := js.Publish(t.Context(), "quaycast.rollups."+subjects.EncodeToken(id), b); err != nil {
			t.Fatal(err)
		}
	}
}
