package console_test

import (
	"context"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/quaycast/quaycast/config"
	"github.com/quaycast/quaycast/internal/testwait"
)

// embedPage is the operator's web app: a page that shows the portal in an iframe.
var embedPage = template.Must(template.New("embed").Parse(`<!doctype html><html lang="en"><title>Operator app</title>
<h1>Your webhooks</h1><iframe id="portal" title="Webhooks" src="{{.}}" style="width:900px;height:600px"></iframe></html>`))

// newEmbedder serves the operator's app on loopback; its URL names the host localhost, another
// site than the gateway's 127.0.0.1, so the portal in its iframe is third-party as it would be
// on app.example.com.
func newEmbedder(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = embedPage.Execute(w, r.URL.Query().Get("src"))
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	return "http://localhost:" + port
}

// The portal in headless Chromium: a link opens tenant A's endpoints and not B's; B's endpoint is
// not found; the tokens, tenants and cluster pages are refused; a test send works; the link
// cannot be used again and an expired one fails; in an iframe of the allowed site the portal
// loads and works with its third-party (partitioned) cookies, while the operator's console, never
// framable, is refused there.
func TestPortalInBrowser(t *testing.T) {
	embOrigin := newEmbedder(t)
	r := startTenants(t, func(cfg *config.Config) { cfg.ConsoleFrameAncestors = embOrigin })
	tb := newTab(t, r.g.APIURL())
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	status := func(path string) int {
		return eval[int](tb, `fetch(`+jsString(path)+`, {redirect: "manual"}).then(r => r.status)`)
	}

	// The operator's tenant views: the tenants, a portal link made with the button and shown
	// once, the owner on the endpoint list and the form's tenant choice.
	tb.open("/ui/signin")
	tb.run(chromedp.SendKeys(css("#token"), adminToken), chromedp.Submit(css("#token")), chromedp.WaitVisible(css(`a[href="/ui/tenants"]`)))
	if main := tb.text("main"); !strings.Contains(main, "tenant maersk") || !strings.Contains(main, "tenant hlag") {
		t.Errorf("the operator's endpoint list does not show the owners:\n%s", main)
	}
	tb.open("/ui/tenants")
	tb.check("tenants")
	tb.run(chromedp.Click(css(`form[action="/ui/tenants/maersk/portal-link"] button`)), chromedp.WaitVisible(css("#link")))
	link := get(tb, chromedp.Value(css("#link")))
	if !strings.HasPrefix(link, r.g.APIURL()+"/ui/portal/qpl_") {
		t.Fatalf("the tenants page's portal link is %q", link)
	}
	tb.check("tenants, a portal link shown")
	tb.open("/ui/endpoints/new")
	if got := eval[[]string](tb, `Array.from(document.querySelectorAll("#tenant option")).map(o => o.value)`); strings.Join(got, ",") != ",hlag,maersk" {
		t.Errorf("the new endpoint form offers the owners %q, want the operator, hlag and maersk", got)
	}
	tb.check("new endpoint with tenants")
	tb.run(chromedp.Click(css(`form.signout button`)), chromedp.WaitVisible(css("#token")))

	// The link, opened as the tenant's user would.
	tb.run(chromedp.Navigate(link), chromedp.WaitVisible(css("#portal-tenant")))
	if p := tb.path(); p != "/ui/endpoints" {
		t.Fatalf("the link opened %s, want /ui/endpoints", p)
	}
	main := tb.text("main")
	if !strings.Contains(main, r.eps["maersk"]) || strings.Contains(main, r.eps["hlag"]) || strings.Contains(main, r.eps[""]) {
		t.Errorf("the portal of maersk lists:\n%s\nwant maersk's endpoint %s only", main, r.eps["maersk"])
	}
	if n := eval[int](tb, `document.querySelectorAll('nav a[href="/ui/tokens"], nav a[href="/ui/tenants"], nav a[href="/ui/cluster"], nav a[href="/ui/publishers"]').length`); n != 0 {
		t.Errorf("the portal's menu has %d of the operator's entries, want none", n)
	}
	tb.check("portal endpoints")

	// Another tenant's endpoint: not found, as an id that does not exist.
	tb.open("/ui/endpoints/" + r.eps["hlag"])
	if h := tb.text("h1"); h != "Not found" {
		t.Errorf("hlag's endpoint in maersk's portal shows %q, want Not found", h)
	}
	if got := status("/ui/endpoints/" + r.eps["hlag"]); got != 404 {
		t.Errorf("hlag's endpoint in maersk's portal: %d, want 404", got)
	}
	tb.dropRefusals(2) // the page and the fetch
	tb.check("portal: another tenant's endpoint")
	for _, path := range []string{"/ui/tokens", "/ui/tenants", "/ui/cluster", "/ui/publishers"} {
		tb.open(path)
		if h := tb.text("h1"); h != "Not allowed" {
			t.Errorf("%s in the portal shows %q, want Not allowed", path, h)
		}
		if got := status(path); got != 403 {
			t.Errorf("%s in the portal: %d, want 403", path, got)
		}
	}

	tb.dropRefusals(8)

	// Its own endpoint: the page, and a test send (a post with the portal's CSRF token).
	tb.open("/ui/endpoints/" + r.eps["maersk"])
	tb.check("portal endpoint")
	tb.open("/ui/endpoints/" + r.eps["maersk"] + "/test")
	tb.run(chromedp.Click(css(`form.card button[type="submit"]`)), chromedp.WaitVisible(css("#result")))
	if got := tb.text("#result .outcome"); !strings.Contains(got, "delivered") {
		t.Errorf("test send from the portal answered %q, want delivered", got)
	}

	// The link again: used.
	tb.run(chromedp.Navigate(link), chromedp.WaitVisible(css("h1")))
	if h := tb.text("h1"); h != "Link already used" {
		t.Errorf("the link opened twice shows %q, want Link already used", h)
	}
	// An expired link.
	short, until := r.link(t, "maersk", map[string]any{"ttl": "1s"})
	testwait.For(t, 10*time.Second, "the short link's time to pass", func() bool { return time.Now().After(until) })
	tb.run(chromedp.Navigate(short), chromedp.WaitVisible(css("h1")))
	if h := tb.text("h1"); h != "Link expired" {
		t.Errorf("an expired link shows %q, want Link expired", h)
	}
	tb.dropRefusals(2) // used, expired
	tb.check("portal: link expired")
	// Signing out leaves the portal; its pages then need a new link.
	tb.run(chromedp.Navigate(r.g.APIURL()+"/ui/endpoints"), chromedp.WaitVisible(css("form.signout button")))
	tb.run(chromedp.Click(css("form.signout button")))
	testwait.For(t, 30*time.Second, "the signed-out page", func() bool { return tb.heading() == "Signed out" })
	if got := status("/ui/endpoints"); got != 303 && got != 0 { // a manual redirect reads as 0 in fetch
		t.Errorf("after signing out, the portal's endpoints answer %d, want the sign-in redirect", got)
	}

	// Embedded in the operator's app, on another site: the portal loads in the iframe, with its
	// session, and posts work there.
	framed, _ := r.link(t, "maersk", nil)
	tb.run(chromedp.Navigate(embOrigin+"/?src="+url.QueryEscape(framed)), chromedp.WaitVisible(css("#portal")))
	frame := portalFrame(t, tb, r.g.APIURL()+"/ui/endpoints")
	ctx, cancel := context.WithTimeout(frame, 30*time.Second)
	defer cancel()
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	if err != nil || !strings.Contains(text, r.eps["maersk"]) || strings.Contains(text, r.eps["hlag"]) {
		t.Fatalf("the framed portal shows %q (%v), want maersk's endpoint only", text, err)
	}
	before := r.rcv.count()
	if err := chromedp.Do(ctx, chromedp.Navigate(r.g.APIURL()+"/ui/endpoints/"+r.eps["maersk"]+"/test"),
		chromedp.Click(chromedp.CSS(`form.card button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("#result"))); err != nil {
		t.Fatalf("test send in the framed portal: %v", err)
	}
	if r.rcv.count() <= before {
		t.Error("the framed portal's test send reached no receiver")
	}
	tb.mu.Lock()
	problems := tb.problems
	tb.problems = nil
	tb.mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the framed portal: %v", problems)
	}

	// The operator's console in the same iframe is refused by the browser: frame-ancestors 'none'.
	tb.run(chromedp.Navigate(embOrigin+"/?src="+url.QueryEscape(r.g.APIURL()+"/ui/signin")), chromedp.WaitVisible(css("#portal")))
	testwait.For(t, 20*time.Second, "the browser refusing to frame the operator's console", func() bool {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, p := range tb.problems {
			if strings.Contains(p, "frame-ancestors 'none'") {
				return true
			}
		}
		return false
	})
	tb.mu.Lock()
	tb.problems = nil
	tb.mu.Unlock()
}

// portalFrame attaches to the cross-site iframe once it shows a page at url: Chrome runs it in a
// process of its own, a target of its own.
func portalFrame(t *testing.T, tb *tab, want string) context.Context {
	t.Helper()
	var frame context.Context
	testwait.For(t, 30*time.Second, "the iframe at "+want, func() bool {
		infos, err := chromedp.Targets(tb.ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, info := range infos {
			if info.Type == "iframe" && info.URL == want {
				ctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithTargetID(info.TargetID))
				t.Cleanup(cancel)
				frame = ctx
				return true
			}
		}
		return false
	})
	return frame
}

// dropRefusals waits for the browser's reports of the n 4xx answers a test asked for, which it
// logs as errors ("Failed to load resource") a moment later, and forgets them, so that check
// holds the pages to the rest.
func (tb *tab) dropRefusals(n int) {
	tb.t.Helper()
	const refusal = "Failed to load resource: the server responded with a status of 4"
	count := func() int {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		k := 0
		for _, p := range tb.problems {
			if strings.Contains(p, refusal) {
				k++
			}
		}
		return k
	}
	testwait.For(tb.t, 20*time.Second, "the browser's reports of the refusals asked for", func() bool { return count() >= n })
	tb.mu.Lock()
	defer tb.mu.Unlock()
	kept := tb.problems[:0]
	for _, p := range tb.problems {
		if !strings.Contains(p, refusal) {
			kept = append(kept, p)
		}
	}
	tb.problems = kept
}

// heading is the page's h1, or "" while the page changes.
func (tb *tab) heading() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	h, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector("h1") || {}).textContent || ""`))
	if err != nil {
		return ""
	}
	return h
}
