package challenges

import (
	"context"
	"fmt"
	"net"
	"net/netip"
)

// DefaultBlockedNetworks returns the networks validation never connects to
// unless Config.BlockedNetworks says otherwise: link-local (which holds the
// cloud metadata service at 169.254.169.254), unspecified and multicast
// addresses. None of them is where a client serves a challenge, and a
// client's DNS records or redirects must not be able to point the validator
// at them. Loopback and private ranges stay allowed: in an internal PKI they
// are where the clients are.
//
// It is a function, not a variable, so no caller can change the defaults of
// another.
func DefaultBlockedNetworks() []netip.Prefix {
	return []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/8"),
		netip.MustParsePrefix("169.254.0.0/16"),
		netip.MustParsePrefix("224.0.0.0/4"),
		netip.MustParsePrefix("::/128"),
		netip.MustParsePrefix("fe80::/10"),
		netip.MustParsePrefix("ff00::/8"),
	}
}

// blockedError is an address validation refused to connect to.
type blockedError struct {
	ip     string
	prefix netip.Prefix
}

func (e *blockedError) Error() string {
	return fmt.Sprintf("%s is in a network validation may not connect to (%s)", e.ip, e.prefix)
}

// refuse returns a *blockedError when ip is in a blocked network.
func (v *Validator) refuse(ip net.IP) error {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return &blockedError{ip: ip.String()}
	}
	// ::ffff:169.254.169.254 reaches the same host as 169.254.169.254.
	addr = addr.Unmap()
	for _, p := range v.blocked {
		if p.Contains(addr) {
			return &blockedError{ip: ip.String(), prefix: p}
		}
	}
	return nil
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
