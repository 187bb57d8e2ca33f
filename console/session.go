package console

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sessions are a cookie carrying the signed-in token, sealed (AES-GCM) with a key derived from
// the admin token, with its expiry inside the seal. Every gateway of a cluster shares the admin
// token, so any of them opens the session; nothing is stored; the token is checked again on every
// request (a revoked token ends its sessions); a new admin token ends them all. Sign-out clears
// the cookie.
const (
	sessionCookie = "quaycast_session"
	csrfCookie    = "quaycast_csrf"
	csrfField     = "csrf"
	sessionAAD    = "quaycast console session v1"
)

var errSession = errors.New("no valid session")

// sealer seals and opens session cookies.
type sealer struct{ aead cipher.AEAD }

func newSealer(adminToken string) *sealer {
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("quaycast console session key"))
	block, err := aes.NewCipher(mac.Sum(nil))
	if err != nil {
		panic(err) // a 32-byte key always makes a cipher
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return &sealer{aead: aead}
}

// seal is the cookie value of a session for token, valid until expires.
func (s *sealer) seal(token string, expires time.Time) string {
	return s.sealAs(sessionAAD, token, expires)
}

// open returns the token of a cookie value sealed by seal and not expired at now.
func (s *sealer) open(value string, now time.Time) (string, error) {
	return s.openAs(sessionAAD, value, now)
}

// sealAs seals v until expires for one use, aad: a value sealed for one use (a portal session)
// does not open as another (an operator's session).
func (s *sealer) sealAs(aad, v string, expires time.Time) string {
	plain := binary.BigEndian.AppendUint64(nil, uint64(expires.Unix()))
	plain = append(plain, v...)
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(aad)))
}

// openAs opens a value sealed by sealAs for aad and not expired at now.
func (s *sealer) openAs(aad, value string, now time.Time) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return "", errSession
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(aad))
	if err != nil || len(plain) < 8 {
		return "", errSession
	}
	if now.Unix() >= int64(binary.BigEndian.Uint64(plain)) {
		return "", errSession
	}
	return string(plain[8:]), nil
}

// secureCookies says whether cookies must be Secure: always over TLS, and over plain HTTP unless
// the browser talks to a loopback address (where a browser keeps Secure cookies off anyway).
func secureCookies(r *http.Request) bool {
	return r.TLS != nil || !loopbackHost(r.Host)
}

// loopbackHost reports a Host header naming this machine: localhost or a loopback address.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/ui/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureCookies(r),
	})
}

// csrfToken is the request's CSRF token: the value of its CSRF cookie, set now if it has none.
// Forms carry it back (double submit); a page of another origin can neither read nor set it.
// A portal session's pages have a CSRF cookie of their own, set as its session cookie is.
func csrfToken(w http.ResponseWriter, r *http.Request) string {
	name, set := csrfCookie, setCookie
	if portalRequest(r) {
		name, set = portalCSRFCookie, setPortalCookie
	}
	if c, err := r.Cookie(name); err == nil && len(c.Value) == 32 {
		return c.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	v := hex.EncodeToString(b)
	set(w, r, name, v, 0)
	r.AddCookie(&http.Cookie{Name: name, Value: v}) // the page rendered now uses it
	return v
}

// sameOrigin checks that a state-changing request comes from a page of this console: its Origin
// (or, without one, its Referer) must be this request's own scheme and host, and a browser's
// Sec-Fetch-Site must say same-origin.
func sameOrigin(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	want := scheme + "://" + r.Host
	if o := r.Header.Get("Origin"); o != "" {
		return o == want
	}
	ref, err := url.Parse(r.Header.Get("Referer"))
	if err != nil || ref.Host == "" {
		return false
	}
	return ref.Scheme+"://"+ref.Host == want
}

// checkCSRF checks a state-changing request: same origin, and the form's token matches the
// cookie's. The form must have been parsed.
func checkCSRF(r *http.Request) bool {
	if !sameOrigin(r) {
		return false
	}
	name := csrfCookie
	if portalRequest(r) {
		name = portalCSRFCookie
	}
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue(csrfField))) == 1
}
