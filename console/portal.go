package console

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/quaycast/quaycast/service"
)

// A tenant's portal: a single-use link (service.CreatePortalLink) opens a session limited to one
// tenant. Its cookie carries the tenant id sealed like an operator's session (but for another
// use: neither opens as the other), and every request asks the service for the tenant's caller
// again, so deleting the tenant ends its sessions. Portal pages may be framed by the sites of
// --console-frame-ancestors; there the cookies are third-party, so they are SameSite=None, Secure
// and Partitioned (CHIPS: kept per embedding site, and accepted where third-party cookies are
// blocked). The operator's pages are never framed.
const (
	portalCookie     = "quaycast_portal"
	portalCSRFCookie = "quaycast_portal_csrf"
	portalAAD        = "quaycast portal session v1"
	// portalLinger keeps an ended session's cookie a while past its end, so that the page can say
	// the session ended rather than ask for a token the tenant's user never had.
	portalLinger = 24 * time.Hour
)

// PortalURL is the address of a portal link's code: under public (--public-url) when set, else
// under the scheme and Host the request r came to.
func PortalURL(public string, r *http.Request, code string) string {
	base := strings.TrimRight(public, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return base + "/ui/portal/" + code
}

// portalRequest reports a request of a portal session, ended or not: it carries the cookie.
func portalRequest(r *http.Request) bool {
	_, err := r.Cookie(portalCookie)
	return err == nil
}

func setPortalCookie(w http.ResponseWriter, _ *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteNoneMode, Secure: true, Partitioned: true,
	})
}

// clearPortal ends a portal session in the browser.
func clearPortal(w http.ResponseWriter, r *http.Request) {
	setPortalCookie(w, r, portalCookie, "", -1)
	setPortalCookie(w, r, portalCSRFCookie, "", -1)
}

// framable lets the sites of --console-frame-ancestors frame this answer: portal pages only.
func (c *Console) framable(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", c.portalCSP)
	if c.o.FrameAncestors != "'none'" {
		w.Header().Del("X-Frame-Options") // DENY would win over the CSP in old browsers
	}
}

// redeem opens a portal link: once, then the link is gone on every gateway. Not in a browser
// signed in to the console as an operator: the link would replace the operator's session with a
// tenant's portal (login CSRF, if another site sent the browser there), so it is refused and left
// unused.
func (c *Console) redeem(w http.ResponseWriter, r *http.Request) {
	c.framable(w)
	if r.Method == http.MethodHead { // a link checker or preview asking: it must not use the link up
		w.WriteHeader(http.StatusOK)
		return
	}
	if _, err := c.sessionToken(r); err == nil {
		c.render(w, r, http.StatusConflict, "message", &page{Title: "Signed in as an operator",
			Message: "This browser is signed in to the console as an operator. A portal link would replace that session with a tenant's portal, so it has not been used: it still works. Open it in another browser profile or a private window, or sign out of the console first."})
		return
	}
	tenant, ttl, err := c.svc.RedeemPortalLink(r.Context(), r.PathValue("code"))
	switch {
	case errors.Is(err, service.ErrLinkExpired):
		c.render(w, r, http.StatusGone, "message", &page{Title: "Link expired",
			Message: "This portal link has expired: a link opens the portal for a few minutes after it is made. Open the portal again from where you found the link."})
		return
	case errors.Is(err, service.ErrLinkUsed):
		c.render(w, r, http.StatusGone, "message", &page{Title: "Link already used",
			Message: "This portal link has been used already, or is not valid: each link opens one session, once. Open the portal again from where you found the link."})
		return
	case err != nil:
		c.log.Error().Err(err).Msg("console: redeem portal link")
		c.refuse(w, r, http.StatusServiceUnavailable, "The link cannot be checked now: try again shortly.")
		return
	}
	setPortalCookie(w, r, portalCookie, c.seal.sealAs(portalAAD, tenant, time.Now().Add(ttl)), int((ttl+portalLinger)/time.Second))
	setPortalCookie(w, r, portalCSRFCookie, "", -1) // a fresh one with the first page
	http.Redirect(w, r, "/ui/endpoints", http.StatusSeeOther)
}

// portalSession runs h as the portal session of the request's cookie, or says it has ended.
func (c *Console) portalSession(w http.ResponseWriter, r *http.Request, h handler, ck *http.Cookie) {
	c.framable(w)
	p := &page{c: c}
	tenant, err := c.seal.openAs(portalAAD, ck.Value, time.Now())
	if err == nil {
		p.caller, err = c.svc.PortalCaller(r.Context(), tenant)
	}
	switch {
	case err == nil:
		p.SignedIn, p.Portal = true, tenant
		h(w, r, p)
	case errors.Is(err, errSession) || errors.Is(err, service.ErrBadToken):
		clearPortal(w, r)
		c.render(w, r, http.StatusUnauthorized, "message", &page{Title: "Session ended",
			Message: "This portal session has ended: it lasts a limited time, and ends when the account is closed. Open the portal again from where you found its link."})
	default:
		c.log.Error().Err(err).Msg("console: check portal session")
		c.refuse(w, r, http.StatusServiceUnavailable, "The session cannot be checked now: try again shortly.")
	}
}
