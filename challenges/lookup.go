package challenges

import (
	"context"
	"errors"
	"net"

	"github.com/acmed/acmed/acme"
)

// queryReporter is a Resolver that also tells which DNS questions a lookup
// asked and what each answered, CNAMEs followed as their own question: the
// validation records show them. NewResolver's does; for another Resolver
// the records show one question per type, with the answers the lookup gave.
type queryReporter interface {
	lookupIPQueries(ctx context.Context, host string) ([]net.IPAddr, []acme.DNSQuery, error)
	lookupTXTQueries(ctx context.Context, name string) ([]string, []acme.DNSQuery, error)
}

// lookupIP is v.resolver.LookupIPAddr with the questions it asked.
func (v *Validator) lookupIP(ctx context.Context, host string) ([]net.IPAddr, []acme.DNSQuery, error) {
	if qr, ok := v.resolver.(queryReporter); ok {
		return qr.lookupIPQueries(ctx, host)
	}
	addrs, err := v.resolver.LookupIPAddr(ctx, host)
	return addrs, addrQueries(host, addrs), err
}

// lookupTXT is v.resolver.LookupTXT with the questions it asked.
func (v *Validator) lookupTXT(ctx context.Context, name string) ([]string, []acme.DNSQuery, error) {
	if qr, ok := v.resolver.(queryReporter); ok {
		return qr.lookupTXTQueries(ctx, name)
	}
	txts, err := v.resolver.LookupTXT(ctx, name)
	return txts, []acme.DNSQuery{{Name: name, Type: "TXT", Answers: txts}}, err
}

// addrQueries words a lookup whose questions are unknown (the system
// resolver's) as one A and one AAAA question.
func addrQueries(host string, addrs []net.IPAddr) []acme.DNSQuery {
	a := acme.DNSQuery{Name: host, Type: "A"}
	aaaa := acme.DNSQuery{Name: host, Type: "AAAA"}
	for _, ip := range addrs {
		if ip.IP.To4() != nil {
			a.Answers = append(a.Answers, ip.IP.String())
		} else {
			aaaa.Answers = append(aaaa.Answers, ip.IP.String())
		}
	}
	return []acme.DNSQuery{a, aaaa}
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
	var (
		dnsErr *net.DNSError
		rc     rcodeError
	)
	isDNS := errors.As(e.err, &dnsErr)
	switch {
	case e.err == nil:
		return acme.DNS("DNS problem: no A or AAAA records found for %s - check that a DNS record exists for this domain", e.host)
	case isDNS && dnsErr.IsNotFound:
		// The Go resolver reports NXDOMAIN and an empty answer alike.
		return acme.DNS("DNS problem: %s does not resolve (NXDOMAIN or no A/AAAA records) - check that a DNS record exists for this domain", e.host)
	case isDNS && dnsErr.IsTimeout, errors.Is(e.err, context.DeadlineExceeded):
		return acme.DNS("DNS problem: query timeout looking up A/AAAA for %s - check that the domain's name servers answer", e.host)
	case errors.As(e.err, &rc):
		return acme.DNS("DNS problem: %s looking up A/AAAA for %s", rc, e.host)
	case isDNS:
		// dnsErr.Err is a short reason such as "server misbehaving" (SERVFAIL).
		return acme.DNS("DNS problem: looking up A/AAAA for %s: %s", e.host, dnsErr.Err)
	default:
		return acme.DNS("DNS problem: looking up A/AAAA for %s failed", e.host)
	}
}
