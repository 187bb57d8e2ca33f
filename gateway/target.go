package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/quaycast/quaycast/subjects"
)

// Target safety: quaycast POSTs to URLs that API callers choose, so without a check anyone with
// endpoints:write could make it reach the gateway's own network — a cloud metadata service, an
// admin port on loopback, a database on a private range. Such addresses are refused unless the
// operator allow-lists them, when the endpoint is saved and again at every dial, on the address
// actually connected to (so a DNS answer that changes after the check — rebinding — gains
// nothing).

// ErrTargetNotAllowed is returned when an address is not a permitted delivery target.
var ErrTargetNotAllowed = errors.New("target address not allowed")

// metadataAddrs are cloud instance-metadata services beyond the link-local range.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
}

// TargetPolicy decides which addresses deliveries may go to.
type TargetPolicy struct {
	Allow        []netip.Prefix // allowed although they are in a refused range
	RequireHTTPS bool
}

// ParseTargetPolicy reads allow-list entries: addresses ("127.0.0.1") or prefixes ("10.1.0.0/16").
func ParseTargetPolicy(allow []string, requireHTTPS bool) (TargetPolicy, error) {
	p := TargetPolicy{RequireHTTPS: requireHTTPS}
	for _, s := range allow {
		if pre, err := netip.ParsePrefix(s); err == nil {
			p.Allow = append(p.Allow, pre.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, fmt.Errorf("allow-target %q: not an IP address or prefix", s)
		}
		p.Allow = append(p.Allow, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// why says why addr is refused, or "" when it may be dialled.
func (p TargetPolicy) why(addr netip.Addr) string {
	addr = addr.Unmap()
	for _, pre := range p.Allow {
		if pre.Contains(addr) {
			return ""
		}
	}
	switch {
	case addr.IsLoopback():
		return "loopback"
	case addr.IsPrivate():
		return "private"
	case addr.IsLinkLocalUnicast() || addr.IsLinkLocalMulticast():
		return "link-local (cloud metadata lives there)"
	case addr.IsMulticast() || addr.IsInterfaceLocalMulticast():
		return "multicast"
	case addr.IsUnspecified():
		return "unspecified"
	}
	for _, m := range metadataAddrs {
		if addr == m {
			return "cloud metadata"
		}
	}
	return ""
}

// CheckURL checks an endpoint URL when it is saved: the scheme, and every address its host
// resolves to now. A host that does not resolve yet is accepted: the dial-time check still holds.
func (p TargetPolicy) CheckURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return nil // Endpoint.Validate reports it
	}
	if p.RequireHTTPS && u.Scheme != "https" {
		return &subjects.FieldError{Field: "url", Reason: "must be https (--require-https)"}
	}
	host := u.Hostname()
	if host == "" {
		return nil // Endpoint.Validate reports it
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := p.why(a); why != "" {
			return &subjects.FieldError{Field: "url", Reason: fmt.Sprintf("%s is a %s address: refused unless allowed with --allow-target", a, why)}
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		if why := p.why(a); why != "" {
			return &subjects.FieldError{Field: "url", Reason: fmt.Sprintf("host %s resolves to %s, a %s address: refused unless allowed with --allow-target", host, a.Unmap(), why)}
		}
	}
	return nil
}

// control is a net.Dialer Control function: it runs after name resolution, on the address about
// to be connected to.
func (p TargetPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrTargetNotAllowed, address)
	}
	if why := p.why(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is a %s address", ErrTargetNotAllowed, ap.Addr().Unmap(), why)
	}
	return nil
}
