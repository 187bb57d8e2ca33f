package console

import (
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/quaycast/quaycast/internal/defaults"
	"github.com/quaycast/quaycast/portal"
	"github.com/quaycast/quaycast/service"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// contentSecurityPolicy allows the console's own script, stylesheet and images, and nothing
// inline: whatever a user typed cannot run even if it reached the page unescaped. ancestors are
// the sites that may frame the page.
func contentSecurityPolicy(ancestors string) string {
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
		"connect-src 'self'; form-action 'self'; frame-ancestors " + ancestors + "; base-uri 'none'"
}

// Options tune the console. The zero value is the default beside each field.
type Options struct {
	// AdminToken keys the session cookies: every gateway sharing it opens the same sessions.
	AdminToken string
	SessionTTL time.Duration // how long a sign-in lasts: 8 h
	// ShownHeader is how the API shows an endpoint's custom header value (credentials redacted);
	// the console shows them the same way. Required.
	ShownHeader func(name, value string) string
	// Live is how often the live page's stream looks for new deliveries: 1 s.
	Live time.Duration
	// PublicURL starts the portal links the console shows (--public-url); "": the request's own
	// scheme and Host.
	PublicURL string
	// FrameAncestors are the sites that may frame tenants' portal pages, a CSP source list
	// checked by config.ValidFrameAncestors: 'none'.
	FrameAncestors string
}

// Console serves the web console under /ui/.
type Console struct {
	svc  *service.Service
	log  zerolog.Logger
	o    Options
	seal *sealer
	csp  string // the operator's pages: never framed
	// portalCSP is the portal's pages': framed by FrameAncestors.
	portalCSP string
	pages     map[string]*pageTemplate
	mux       *http.ServeMux

	closing   chan struct{} // closed by Close: streams end
	closeOnce sync.Once
}

// New returns the console over svc.
func New(svc *service.Service, log zerolog.Logger, o Options) *Console {
	if o.SessionTTL <= 0 {
		o.SessionTTL = 8 * time.Hour
	}
	if o.Live <= 0 {
		o.Live = time.Second
	}
	if o.ShownHeader == nil {
		panic("console: Options.ShownHeader is required")
	}
	o.FrameAncestors = strings.Join(strings.Fields(o.FrameAncestors), " ")
	if o.FrameAncestors == "" {
		o.FrameAncestors = defaults.ConsoleFrameAncestors
	}
	c := &Console{svc: svc, log: log, o: o, seal: newSealer(o.AdminToken), pages: parsePages(), closing: make(chan struct{}),
		csp: contentSecurityPolicy("'none'"), portalCSP: contentSecurityPolicy(o.FrameAncestors)}
	c.mux = c.routes()
	return c
}

// Close ends the live streams, for the server's shutdown (http.Server.RegisterOnShutdown).
func (c *Console) Close() { c.closeOnce.Do(func() { close(c.closing) }) }

// handler is a console page's handler: it gets the request's caller in p.
type handler func(w http.ResponseWriter, r *http.Request, p *page)

func (c *Console) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/ui/static/", http.FileServerFS(static))
	mux.Handle("GET /ui/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/ui/endpoints", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /ui/signin", c.open(c.signInPage))
	mux.HandleFunc("POST /ui/signin", c.open(c.signIn))
	mux.HandleFunc("POST /ui/signout", c.open(c.signOut))
	mux.HandleFunc("GET /ui/portal/{code}", c.open(c.redeem))
	for _, rt := range []struct {
		pattern string
		h       handler
	}{
		{"GET /ui/endpoints", c.endpointsPage},
		{"GET /ui/endpoints/new", c.newEndpointPage},
		{"POST /ui/endpoints/new", c.createEndpoint},
		{"GET /ui/endpoints/{id}", c.endpointPage},
		{"GET /ui/endpoints/{id}/edit", c.editEndpointPage},
		{"POST /ui/endpoints/{id}/edit", c.editEndpoint},
		{"POST /ui/endpoints/{id}/enabled", c.setEnabled},
		{"POST /ui/endpoints/{id}/rotate", c.rotateSecret},
		{"GET /ui/endpoints/{id}/delete", c.deletePage},
		{"POST /ui/endpoints/{id}/delete", c.deleteEndpoint},
		{"GET /ui/endpoints/{id}/test", c.testPage},
		{"POST /ui/endpoints/{id}/test", c.testSend},
		{"GET /ui/endpoints/{id}/redeliver", c.redeliverPage},
		{"POST /ui/endpoints/{id}/redeliver", c.redeliver},
		{"GET /ui/endpoints/{id}/deliveries", c.deliveriesPage},
		{"GET /ui/endpoints/{id}/deliveries/{seq}", c.deliveryPage},
		{"GET /ui/endpoints/{id}/dead-letters", c.deadLettersPage},
		{"POST /ui/endpoints/{id}/dead-letters/replay", c.replay},
		{"GET /ui/endpoints/{id}/dead-letters/purge", c.purgePage},
		{"POST /ui/endpoints/{id}/dead-letters/purge", c.purge},
		{"GET /ui/events", c.eventDeliveriesPage},
		{"GET /ui/live", c.livePage},
		{"GET /ui/live/stream", c.liveStream},
		{"GET /ui/catalogue", c.cataloguePage},
		{"POST /ui/catalogue", c.createEventType},
		{"POST /ui/catalogue/{name}/delete", c.deleteEventType},
		{"GET /ui/tokens", c.tokensPage},
		{"POST /ui/tokens", c.createToken},
		{"POST /ui/tokens/{id}/revoke", c.revokeToken},
		{"GET /ui/publishers", c.publishersPage},
		{"POST /ui/publishers", c.createPublisher},
		{"POST /ui/publishers/{id}/revoke", c.revokePublisher},
		{"GET /ui/cluster", c.clusterPage},
		{"GET /ui/tenants", c.tenantsPage},
		{"POST /ui/tenants", c.createTenant},
		{"POST /ui/tenants/{id}/delete", c.deleteTenant},
		{"POST /ui/tenants/{id}/portal-link", c.portalLink},
	} {
		mux.HandleFunc(rt.pattern, c.open(c.signedIn(rt.h)))
	}
	mux.HandleFunc("/ui/", c.open(func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "message", &page{Title: "Not found", Message: "There is no page at " + r.URL.Path + "."})
	}))
	return mux
}

// ServeHTTP serves the console: its own security headers on every answer.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

// open wraps every console handler: security headers; without access control, a Host that is
// this machine (a page of another site cannot reach the console by a name it points at
// 127.0.0.1); and for every state-changing request, the same-origin and CSRF checks, also
// without access control.
func (c *Console) open(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", c.csp)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		if !c.svc.AccessControl() && !loopbackHost(r.Host) {
			c.refuse(w, r, http.StatusMisdirectedRequest, "Without access control the console answers only to this machine's own names (localhost, 127.0.0.1, ::1).")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				c.refuse(w, r, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !checkCSRF(r) {
				c.log.Warn().Str("path", portal.RedactPath(r.URL.Path)).Str("origin", r.Header.Get("Origin")).Msg("console: cross-site request refused")
				c.refuse(w, r, http.StatusForbidden, "Refused: this request did not come from a page of this console (cross-site request, or an expired form). Reload the page and try again.")
				return
			}
		}
		h(w, r)
	}
}

// maxForm bounds a form's body.
const maxForm = 256 << 10

// refuse answers a plain page saying why, without the caller's details.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "message", &page{Title: http.StatusText(status), Message: msg})
}

// signedIn runs h with the request's caller: the admin without access control, else the
// session's token holder, else a portal session's tenant; without a valid session, to the
// sign-in page. An operator's valid session wins over a portal cookie beside it, which is cleared:
// a link opened in this browser (by another site's doing, perhaps — the operator's SameSite=Strict
// cookie does not come with a navigation from another site, so the link's page cannot always tell)
// must not turn the operator's console into a tenant's portal.
func (c *Console) signedIn(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p := &page{c: c}
		if !c.svc.AccessControl() {
			p.caller, p.Open = service.Admin(), true
			h(w, r, p)
			return
		}
		token, err := c.sessionToken(r)
		if err == nil {
			p.caller, err = c.svc.Authenticate(r.Context(), token)
		}
		if portalCk, perr := r.Cookie(portalCookie); perr == nil {
			if err != nil { // no valid operator session: the portal's stands
				c.portalSession(w, r, h, portalCk)
				return
			}
			clearPortal(w, r)
			dropPortalCookies(r)
		}
		switch {
		case err == nil:
			p.SignedIn = true
			h(w, r, p)
		case errors.Is(err, errSession) || errors.Is(err, service.ErrBadToken) || errors.Is(err, service.ErrNoToken):
			setCookie(w, r, sessionCookie, "", -1)
			if r.Method == http.MethodGet && r.URL.Path != "/ui/live/stream" {
				http.Redirect(w, r, "/ui/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			c.refuse(w, r, http.StatusUnauthorized, "Your session has ended: sign in again.")
		default:
			c.log.Error().Err(err).Msg("console: check session token")
			c.refuse(w, r, http.StatusServiceUnavailable, "The token cannot be checked now: try again shortly.")
		}
	}
}

// dropPortalCookies removes the portal's cookies from the request, so that what follows (its
// forms' CSRF token) is the operator's.
func dropPortalCookies(r *http.Request) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, ck := range cookies {
		if ck.Name != portalCookie && ck.Name != portalCSRFCookie {
			r.AddCookie(ck)
		}
	}
}

func (c *Console) sessionToken(r *http.Request) (string, error) {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", errSession
	}
	return c.seal.open(ck.Value, time.Now())
}

func (c *Console) signInPage(w http.ResponseWriter, r *http.Request) {
	if !c.svc.AccessControl() {
		http.Redirect(w, r, "/ui/endpoints", http.StatusSeeOther)
		return
	}
	c.render(w, r, http.StatusOK, "signin", &page{Title: "Sign in", Data: signInData{Next: safeNext(r.URL.Query().Get("next")), Insecure: !secureCookieUsable(r)}})
}

type signInData struct {
	Next     string
	Insecure bool // plain HTTP to a remote address: the browser will not keep the Secure cookie
}

func secureCookieUsable(r *http.Request) bool { return r.TLS != nil || loopbackHost(r.Host) }

func (c *Console) signIn(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.PostFormValue("next"))
	token := strings.TrimSpace(r.PostFormValue("token"))
	if !c.svc.AccessControl() {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	_, err := c.svc.Authenticate(r.Context(), token)
	if err != nil {
		p := &page{Title: "Sign in", Data: signInData{Next: next, Insecure: !secureCookieUsable(r)}, Errors: map[string]string{}}
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, service.ErrNoToken):
			p.Errors["token"] = "Enter the admin token or an API token."
		case errors.Is(err, service.ErrBadToken):
			p.Errors["token"] = "This token is not valid (unknown, revoked or mistyped)."
		default:
			c.log.Error().Err(err).Msg("console: sign in")
			status, p.Error = http.StatusServiceUnavailable, "The token cannot be checked now: try again shortly."
		}
		c.render(w, r, status, "signin", p)
		return
	}
	clearPortal(w, r) // an operator signing in leaves the portal session opened in this browser
	setCookie(w, r, sessionCookie, c.seal.seal(token, time.Now().Add(c.o.SessionTTL)), int(c.o.SessionTTL/time.Second))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (c *Console) signOut(w http.ResponseWriter, r *http.Request) {
	if portalRequest(r) { // the portal's user has no token to sign in with: say so, here
		c.framable(w)
		clearPortal(w, r)
		c.render(w, r, http.StatusOK, "message", &page{Title: "Signed out", Message: "You have left the portal. Open it again from where you found its link."})
		return
	}
	setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/signin", http.StatusSeeOther)
}

// safeNext is where to go after signing in: a console path, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "/ui//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/endpoints"
	}
	return next
}
