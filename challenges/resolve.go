package challenges

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

// Resolver looks up the addresses of a name. *net.Resolver satisfies it.
type Resolver interface {
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// lookupTimeout bounds one lookup through a resolver from NewResolver, and
// the dial of each query to its server: a silent server must not take the
// whole validation budget, nor hold a socket open after it.
const lookupTimeout = 5 * time.Second

// NewResolver returns the system resolver (net.DefaultResolver, honouring
// /etc/hosts) when server == "", else a resolver that sends every query to
// server ("host:port"), over UDP with TCP fallback, each lookup bounded by a
// timeout. The second is a *net.Resolver (PreferGo) behind a thin wrapper that
// makes every name absolute: validation must ask about exactly the name being
// validated, never about a search-domain variant of it from resolv.conf that
// might resolve to someone else's host.
func NewResolver(server string) Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	d := &net.Dialer{Timeout: lookupTimeout}
	return &serverResolver{r: &net.Resolver{
		PreferGo: true,
		// The Go resolver asks for "udp" first and for "tcp" when an answer
		// comes back truncated; passing network through keeps that fallback
		// while the address is always ours.
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, server)
		},
	}}
}

// serverResolver is the resolver NewResolver returns for a given server.
type serverResolver struct {
	r *net.Resolver
}

func (s *serverResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	// A rooted name is never expanded with search domains. IP literals are
	// left alone so that they still come back as themselves.
	if net.ParseIP(host) == nil && !strings.HasSuffix(host, ".") {
		host += "."
	}
	return s.r.LookupIPAddr(ctx, host)
}

// lookupError is a failed or empty lookup of host; it becomes a dns problem.
type lookupError struct {
	host string
	err  error // nil when the name resolved to no address
}

func (e *lookupError) Error() string {
	if e.err == nil {
		return "no addresses for " + e.host
	}
	return "looking up " + e.host + ": " + e.err.Error()
}

func (e *lookupError) Unwrap() error { return e.err }

// problem words the failure for the client, who can usually fix it in their
// own zone.
func (e *lookupError) problem() *acme.Problem {
	var dnsErr *net.DNSError
	isDNS := errors.As(e.err, &dnsErr)
	switch {
	case e.err == nil:
		return acme.DNS("DNS problem: no A or AAAA records found for %s - check that a DNS record exists for this domain", e.host)
	case isDNS && dnsErr.IsNotFound:
		// The Go resolver reports NXDOMAIN and an empty answer alike.
		return acme.DNS("DNS problem: %s does not resolve (NXDOMAIN or no A/AAAA records) - check that a DNS record exists for this domain", e.host)
	case isDNS && dnsErr.IsTimeout, errors.Is(e.err, context.DeadlineExceeded):
		return acme.DNS("DNS problem: query timeout looking up A/AAAA for %s - check that the domain's name servers answer", e.host)
	case isDNS:
		// dnsErr.Err is a short reason such as "server misbehaving" (SERVFAIL).
		return acme.DNS("DNS problem: looking up A/AAAA for %s: %s", e.host, dnsErr.Err)
	default:
		return acme.DNS("DNS problem: looking up A/AAAA for %s failed", e.host)
	}
}

// orderAddrs returns addrs without duplicates, IPv6 before IPv4, each family
// in the resolver's order. Clients such as certbot --standalone or lego often
// listen on IPv4 only while their name also has an AAAA record, so IPv6 is
// tried first and every other address after it.
func orderAddrs(addrs []net.IPAddr) []net.IPAddr {
	out := make([]net.IPAddr, 0, len(addrs))
	seen := make(map[string]bool, len(addrs))
	for _, v6 := range []bool{true, false} {
		for _, a := range addrs {
			if a.IP == nil || (a.IP.To4() == nil) != v6 || seen[a.String()] {
				continue
			}
			seen[a.String()] = true
			out = append(out, a)
		}
	}
	return out
}
