package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/quaycast/quaycast/internal/fielderr"
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

// metadataHosts are the host names of cloud instance-metadata services. They are refused by name:
// at save time DNS may not answer for them (or answer differently than on that cloud).
var metadataHosts = []string{
	"metadata.google.internal",   // Google Cloud
	"metadata.goog",              // Google Cloud
	"metadata",                   // Google Cloud, through the VPC's search domain
	"instance-data",              // AWS EC2
	"instance-data.ec2.internal", // AWS EC2
	"metadata.tencentyun.com",    // Tencent Cloud
}

// CheckURL checks an endpoint URL when it is saved: the scheme, then the host — an address in any
// form a resolver reads as one, a localhost or cloud-metadata name, or else every address it
// resolves to now. A name that does not resolve now is accepted with a warning (CI and air-gapped
// sites have no DNS): the dial-time check still holds.
func (p TargetPolicy) CheckURL(ctx context.Context, raw string) (warnings []string, err error) {
	host, resolve, err := p.checkStatic(raw)
	if err != nil || !resolve {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return []string{fmt.Sprintf("url: host %s does not resolve now (%v): saved anyway; its address is checked at every connection", host, err)}, nil
	}
	for _, a := range addrs {
		if why := p.why(a); why != "" {
			return nil, &fielderr.Error{Field: "url", Reason: fmt.Sprintf("host %s resolves to %s, a %s address: refused unless allowed with --allow-target", host, a.Unmap(), why)}
		}
	}
	return nil, nil
}

// CheckStatic checks what can be checked of a URL without DNS: an endpoint URL saved earlier
// that fails it would be refused now.
func (p TargetPolicy) CheckStatic(raw string) error {
	_, _, err := p.checkStatic(raw)
	return err
}

// checkStatic checks what can be checked of a URL without DNS. resolve is true when its host is a
// name only DNS can tell the addresses of.
func (p TargetPolicy) checkStatic(raw string) (host string, resolve bool, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, nil // Endpoint.Validate reports it
	}
	if p.RequireHTTPS && u.Scheme != "https" {
		return "", false, &fielderr.Error{Field: "url", Reason: "must be https (--require-https)"}
	}
	host = u.Hostname()
	if host == "" {
		return "", false, nil // Endpoint.Validate reports it
	}
	refuse := func(format string, args ...any) (string, bool, error) {
		return host, false, &fielderr.Error{Field: "url", Reason: fmt.Sprintf(format, args...)}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := p.why(a); why != "" {
			return refuse("%s is a %s address: refused unless allowed with --allow-target", a, why)
		}
		return host, false, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if a, numeric, ok := inetAton(name); numeric {
		if !ok {
			return refuse("host %s ends in a number but is not an IPv4 address", host)
		}
		if why := p.why(a); why != "" {
			return refuse("host %s is the address %s, a %s address: refused unless allowed with --allow-target", host, a, why)
		}
		return host, false, nil
	}
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		for _, a := range []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1}), netip.IPv6Loopback()} {
			if why := p.why(a); why != "" {
				return refuse("host %s is always loopback (RFC 6761): refused unless 127.0.0.1 and ::1 are allowed with --allow-target", host)
			}
		}
		return host, false, nil
	}
	if slices.Contains(metadataHosts, name) {
		return refuse("host %s is a cloud metadata service: refused (to reach that address on purpose, allow it with --allow-target and use the address)", host)
	}
	return host, true, nil
}

// inetAton reads a host name as the C library's inet_aton does — one to four parts, each
// decimal, octal (leading 0) or hex (0x), the last filling the remaining bytes: 127.1,
// 0x7f000001, 2130706433, 0177.0.0.1 — so that every form a resolver would dial as an address is
// checked as that address. numeric says the name ends in a number, as an IPv4 address does (a
// host name's last label never is one); ok that it is a valid address.
func inetAton(name string) (addr netip.Addr, numeric, ok bool) {
	parts := strings.Split(name, ".")
	if !numericPart(parts[len(parts)-1]) {
		return netip.Addr{}, false, false
	}
	if len(parts) > 4 {
		return netip.Addr{}, true, false
	}
	var ip uint32
	for i, part := range parts {
		v, ok := atonPart(part)
		last := i == len(parts)-1
		switch {
		case !ok, !last && v > 0xff, last && v > 0xffffffff>>(8*(len(parts)-1)):
			return netip.Addr{}, true, false
		case last:
			ip |= uint32(v)
		default:
			ip |= uint32(v) << (24 - 8*i)
		}
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true, true
}

// numericPart reports a label made of decimal digits, or 0x and hex digits.
func numericPart(s string) bool {
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// atonPart reads one part of an inet_aton address: 0x hex (0x alone is 0), 0 octal, or decimal.
func atonPart(s string) (uint64, bool) {
	base := 10
	switch {
	case strings.HasPrefix(s, "0x"):
		if s = s[2:]; s == "" {
			return 0, true
		}
		base = 16
	case len(s) > 1 && s[0] == '0':
		base = 8
	}
	v, err := strconv.ParseUint(s, base, 64)
	return v, err == nil
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
