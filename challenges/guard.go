package challenges

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// DefaultBlockedNetworks returns the networks validation never connects to
// unless Config.AllowedNetworks opens part of them: link-local (which holds
// the cloud metadata service at 169.254.169.254), the IPv6 metadata
// addresses of AWS (fd00:ec2::254) and the one of Alibaba Cloud
// (100.100.100.200), unspecified addresses (a dial to 0.0.0.0 reaches the
// validation server itself) and multicast. None of them is where a client
// serves a challenge, and a client's DNS records or redirects must not be
// able to point the validator at them. Loopback and private ranges stay
// open: in an internal PKI they are where the clients are, and validation
// reaches them only on the challenge ports, never showing what they answer.
//
// Config.BlockedNetworks adds to these; it cannot remove them. Their
// IPv4-mapped (::ffff:a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) forms are
// blocked with them.
//
// It is a function, not a variable, so no caller can change the defaults of
// another.
func DefaultBlockedNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("100.100.100.200/32"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("fd00:ec2::254/128"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
}

// nat64Prefix is the well-known NAT64 prefix (RFC 6052): a NAT64 gateway
// connects 64:ff9b::a.b.c.d to the IPv4 address a.b.c.d.
func nat64Prefix() netip.Prefix { return netip.MustParsePrefix("64:ff9b::/96") }

// guard decides which addresses validation may connect to. It holds
// configuration only.
type guard struct {
	blocked []netip.Prefix // the defaults and Config.BlockedNetworks
	allowed []netip.Prefix // Config.AllowedNetworks: opened within blocked
}

func newGuard(blocked, allowed []netip.Prefix) guard {
	return guard{blocked: append(DefaultBlockedNetworks(), blocked...), allowed: allowed}
}

// blockedError is an address validation refused to connect to.
type blockedError struct {
	ip     string
	prefix netip.Prefix
	via    string // the IPv4 address a NAT64 address stands for; "" if none
}

func (e *blockedError) Error() string {
	if !e.prefix.IsValid() {
		return e.ip + " is not an address validation may connect to"
	}
	if e.via != "" {
		return fmt.Sprintf("%s is in a network validation may not connect to (%s, through NAT64 as %s)", e.ip, e.prefix, e.via)
	}
	return fmt.Sprintf("%s is in a network validation may not connect to (%s)", e.ip, e.prefix)
}

// check returns a *blockedError when addr may not be connected to: when it,
// its IPv4 form (::ffff:a.b.c.d) or the IPv4 address it reaches through
// NAT64 is in a blocked network and not in an allowed one.
func (g guard) check(addr netip.Addr) error {
	if !addr.IsValid() || addr.Zone() != "" {
		// A zone names an interface of the validation server: only
		// link-local addresses have one, and they are blocked anyway.
		return &blockedError{ip: addr.String()}
	}
	addr = addr.Unmap()
	if p, ok := g.blockedBy(addr); ok {
		return &blockedError{ip: addr.String(), prefix: p}
	}
	if nat64Prefix().Contains(addr) {
		b := addr.As16()
		v4 := netip.AddrFrom4([4]byte(b[12:]))
		if p, ok := g.blockedBy(v4); ok {
			return &blockedError{ip: addr.String(), prefix: p, via: v4.String()}
		}
	}
	return nil
}

func (g guard) blockedBy(addr netip.Addr) (netip.Prefix, bool) {
	for _, p := range g.allowed {
		if p.Contains(addr) {
			return netip.Prefix{}, false
		}
	}
	for _, p := range g.blocked {
		if p.Contains(addr) {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// refuse is check for a net.IP.
func (v *Validator) refuse(ip net.IP) error {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return &blockedError{ip: ip.String()}
	}
	return v.guard.check(addr)
}

// guardedDialer returns a copy of base whose every connection meets g just
// before the socket connects, at the address the kernel is about to use:
// whatever path an address took (a DNS answer, an IP identifier, a
// redirect, a literal in any of its forms), no code path can dial past
// the guard. base's own Control or ControlContext still runs after it.
func guardedDialer(base *net.Dialer, g guard) *net.Dialer {
	d := *base
	inner, innerCtx := base.Control, base.ControlContext
	d.Control = nil
	d.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return &blockedError{ip: host}
		}
		if err := g.check(addr); err != nil {
			return err
		}
		switch {
		case innerCtx != nil:
			return innerCtx(ctx, network, address, c)
		case inner != nil:
			return inner(network, address, c)
		}
		return nil
	}
	return &d
}

// dialFirst connects to port on the first of ips that accepts, in order,
// skipping blocked ones; it returns every failed attempt. Each address gets
// its share of the time left, so one that drops packets leaves time for the
// addresses after it.
func (v *Validator) dialFirst(ctx context.Context, ips []net.IPAddr, port string) (net.Conn, []attempt) {
	var failed []attempt
	for i, ip := range ips {
		if err := v.refuse(ip.IP); err != nil {
			failed = append(failed, attempt{ip: ip.String(), err: err})
			continue
		}
		actx, cancel := shareContext(ctx, len(ips)-i, v.timeout)
		conn, err := v.dialer.DialContext(actx, "tcp", net.JoinHostPort(ip.String(), port))
		cancel()
		if err == nil {
			return conn, failed
		}
		failed = append(failed, attempt{ip: ip.String(), err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, failed
}
