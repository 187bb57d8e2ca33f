package gateway

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/quaycast/quaycast/consumer"
	"github.com/quaycast/quaycast/gateway/signature"
	"github.com/quaycast/quaycast/internal/fielderr"
)

// The headers of a delivery, in one place: what the sender writes, the names that reserves, and
// the one rule for showing header values.

// Headers sent with every delivery beside the signature headers.
const (
	HeaderEventType   = "Quaycast-Event-Type"
	HeaderEventSource = "Quaycast-Event-Source"
	HeaderAttempt     = "Quaycast-Attempt"
	// HeaderPreviousEventID names the entity's event sent to (or dead-lettered for) the endpoint
	// before this one, empty for the first: a receiver that did not see it has a gap.
	HeaderPreviousEventID = "Quaycast-Previous-Event-Id"
	userAgent             = "quaycast/1"
)

// ownHeaders are the values of the headers quaycast writes on one POST.
type ownHeaders struct {
	eventID, eventType, source string
	previousID                 string
	timestamp                  int64
	attempt                    int
	sigHeader                  string // as the signer names it
	sig                        []byte
}

// write sets quaycast's headers on h, over the endpoint's custom headers already there. It is
// what the sender writes, and what the reserved names are derived from (writtenNames), so a header
// added here is reserved with no other change. The signature goes last: nothing overwrites it.
func (o *ownHeaders) write(h http.Header) {
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{userAgent}
	h[signature.HeaderID] = []string{o.eventID}
	h[signature.HeaderTimestamp] = []string{strconv.FormatInt(o.timestamp, 10)}
	h[HeaderEventType] = []string{o.eventType}
	h[HeaderEventSource] = []string{o.source}
	h[HeaderAttempt] = []string{strconv.Itoa(o.attempt)}
	h[HeaderPreviousEventID] = []string{o.previousID} // sent empty, so "first" differs from "not told"
	h[o.sigHeader] = []string{string(o.sig)}
}

// transportHeaders are written or managed by net/http's transport on every request (framing,
// connection, compression): a header of that name from an endpoint would be dropped, sent twice,
// or would break the request or the reading of the reply.
var transportHeaders = []string{
	"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Proxy-Connection",
	"Proxy-Authorization", "Te", "Trailer", "Upgrade", "Accept-Encoding",
}

// clientHeaders are written by net/http's client from a URL's credentials and a cookie jar.
// quaycast has neither (URLs with credentials are refused), so custom headers may carry them — the
// documented way to send a credential — but a signature may not go there.
var clientHeaders = []string{"Authorization", "Cookie"}

// reservedPrefixes are kept for headers quaycast writes, now or later.
var reservedPrefixes = []string{"webhook-", "quaycast-"}

// writtenNames lists, lower-cased, every header quaycast or net/http's transport writes on a
// delivery but the signature header: derived by writing quaycast's headers.
var writtenNames = sync.OnceValue(func() map[string]bool {
	h := http.Header{}
	(&ownHeaders{}).write(h)
	delete(h, "") // the signature header, which depends on the endpoint
	out := make(map[string]bool, len(h)+len(transportHeaders))
	for k := range h {
		out[strings.ToLower(k)] = true
	}
	for _, k := range transportHeaders {
		out[strings.ToLower(k)] = true
	}
	return out
})

func reservedPrefix(lower string) bool {
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}

// customAllowed says whether quaycast sends a custom header of this name to an endpoint whose
// signature goes in sigHeader: not when quaycast or net/http writes the name, in any case.
func customAllowed(name, sigHeader string) bool {
	lower := strings.ToLower(name)
	return !writtenNames()[lower] && !reservedPrefix(lower) && !strings.EqualFold(name, sigHeader)
}

// signatureHeader is the header an endpoint's signature goes in ("" if its profile is unknown).
func signatureHeader(s consumer.Signing) string {
	p, err := signature.ParseProfile(s.Profile)
	if err != nil {
		return ""
	}
	return p.HeaderName(SignatureOptions(s))
}

// checkHeaders refuses an endpoint whose custom headers or signature header quaycast or net/http
// would write too, and custom headers that are the signature header in another case. The error
// names headers.<name> or signing.header_name.
func checkHeaders(ep *consumer.Endpoint) error {
	sig := signatureHeader(ep.Signing)
	for _, name := range slices.Sorted(maps.Keys(ep.Headers)) {
		switch {
		case strings.EqualFold(name, sig):
			return &fielderr.Error{Field: "headers." + name, Reason: fmt.Sprintf("is the signature header %s (compared ignoring case): the receiver would get both", sig)}
		case !customAllowed(name, sig):
			return &fielderr.Error{Field: "headers." + name, Reason: "is set by quaycast or its HTTP client and cannot be overridden"}
		}
	}
	if name := ep.Signing.HeaderName; name != "" {
		lower := strings.ToLower(name)
		if writtenNames()[lower] || reservedPrefix(lower) || slices.ContainsFunc(clientHeaders, func(c string) bool { return strings.EqualFold(c, name) }) {
			return &fielderr.Error{Field: "signing.header_name", Reason: fmt.Sprintf("%s is set by quaycast or its HTTP client: choose another header for the signature", name)}
		}
	}
	return nil
}

// customHeaders are the custom headers quaycast sends to ep, canonically spelled: those that
// quaycast's own do not override (an endpoint saved before a name was reserved keeps working).
func customHeaders(ep *consumer.Endpoint) http.Header {
	sig := signatureHeader(ep.Signing)
	h := make(http.Header, len(ep.Headers))
	for k, v := range ep.Headers {
		if customAllowed(k, sig) {
			h[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	return h
}

const redactedValue = "[redacted]"

// shownValue is the one rule for showing a header value of a delivery — in endpoint views, the
// delivery log, test-send answers: a custom header whose name suggests a credential is redacted;
// other custom headers (tenant ids, configuration flags) and the headers quaycast wrote itself,
// signatures included (they reveal nothing of the secret), are shown.
func shownValue(name, value string, custom bool) string {
	if custom && credentialName(name) {
		return redactedValue
	}
	return value
}

// credentialName reports header names that suggest a credential.
func credentialName(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"auth", "cookie", "token", "key", "secret", "password", "signature", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}
