package challenges

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/miekg/dns"
)

// Resolver looks up what validation needs to know about a name. Both
// *net.Resolver and what NewResolver returns satisfy it.
//
// Failures should be *net.DNSError: IsNotFound for a name that does not
// exist or has no records of the type asked for, IsTimeout for a server that
// did not answer in time. The problems a client sees are worded from these.
type Resolver interface {
	// LookupIPAddr returns the addresses of host (A and AAAA), CNAMEs
	// followed. http-01 and tls-alpn-01 connect to them.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	// LookupTXT returns the TXT records at name, CNAMEs followed, the
	// strings of each record joined into one. dns-01 reads them.
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

const (
	// queryTimeout bounds one query to one name server, dial included: a
	// silent server must not take the whole validation budget from the
	// servers after it, nor hold a socket open after it.
	queryTimeout = 5 * time.Second
	// maxCNAMEs is how many CNAMEs a lookup follows. Delegating
	// _acme-challenge into a validation zone takes one; a chain longer than
	// this is a misconfiguration, or a loop not yet closed.
	maxCNAMEs = 8
	// ednsSize is the UDP payload size advertised (the DNS flag day 2020
	// value): large enough for a few TXT records, small enough not to be
	// fragmented on the way.
	ednsSize = 1232
	// resolvConf is where the system's name servers are read from when
	// none are configured.
	resolvConf = "/etc/resolv.conf"
)

// NewResolver returns the resolver validation uses.
//
// With servers ("host:port"; a missing port is 53), every query goes to them
// through miekg/dns: over UDP, retried over TCP when the answer is truncated,
// each server tried in turn when one fails or does not answer. This is how
// names only an internal DNS knows (such as *.svc.cluster.local from the
// cluster DNS) are validated.
//
// With none, addresses come from the system resolver (net.DefaultResolver,
// which honours /etc/hosts), while TXT records are asked of the name servers
// in /etc/resolv.conf, or 127.0.0.1:53 when it lists none: the system
// resolver cannot say NXDOMAIN from SERVFAIL, which a dns-01 problem should.
//
// Through the servers, names are always looked up as absolute names:
// validation must ask about exactly the name being validated, never about a
// search-domain variant of it that might resolve to someone else's host.
func NewResolver(servers ...string) Resolver {
	r := &dnsResolver{dialer: &net.Dialer{Timeout: queryTimeout}}
	for _, s := range servers {
		if s = strings.TrimSpace(s); s != "" {
			r.servers = append(r.servers, withPort(s))
		}
	}
	if len(r.servers) == 0 {
		r.system = true
		r.servers = systemNameservers(resolvConf)
	}
	return r
}

// withPort adds DNS's port to a server given without one.
func withPort(server string) string {
	if _, _, err := net.SplitHostPort(server); err == nil {
		return server
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(server, "["), "]"), "53")
}

// systemNameservers returns the name servers of a resolv.conf file, or
// 127.0.0.1:53 (what the C library assumes) when it has none.
func systemNameservers(path string) []string {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil || len(cfg.Servers) == 0 {
		return []string{"127.0.0.1:53"}
	}
	servers := make([]string, len(cfg.Servers))
	for i, s := range cfg.Servers {
		servers[i] = net.JoinHostPort(s, cfg.Port)
	}
	return servers
}

// dnsResolver is the Resolver of NewResolver. It holds configuration only,
// so one serves any number of concurrent lookups.
type dnsResolver struct {
	servers []string
	system  bool // addresses from net.DefaultResolver; servers only for TXT
	dialer  *net.Dialer
}

func (r *dnsResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	addrs, _, err := r.lookupIPQueries(ctx, host)
	return addrs, err
}

func (r *dnsResolver) lookupIPQueries(ctx context.Context, host string) ([]net.IPAddr, []acme.DNSQuery, error) {
	// IP literals come back as themselves, as from net.Resolver.
	if ip, err := netip.ParseAddr(host); err == nil {
		return []net.IPAddr{{IP: ip.AsSlice(), Zone: ip.Zone()}}, nil, nil
	}
	if r.system {
		// Not rooted: the system resolver skips /etc/hosts for a rooted
		// name, and it tries a name with a dot as absolute first anyway.
		addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
		return addrs, addrQueries(host, addrs), err
	}
	fqdn := dns.Fqdn(host)

	type result struct {
		rrs     []dns.RR
		queries []acme.DNSQuery
		err     error
	}
	// Asked at once, as the system resolver does, so a slow AAAA does not
	// delay the A a client more often serves on.
	qtypes := []uint16{dns.TypeA, dns.TypeAAAA}
	results := make([]chan result, len(qtypes))
	for i, qtype := range qtypes {
		results[i] = make(chan result, 1)
		go func() {
			rrs, queries, err := r.lookup(ctx, fqdn, qtype)
			results[i] <- result{rrs, queries, err}
		}()
	}
	var (
		addrs   []net.IPAddr
		queries []acme.DNSQuery
		errs    []error
	)
	// Both are awaited, in order, so the records list A before AAAA.
	for _, ch := range results {
		res := <-ch
		queries = append(queries, res.queries...)
		if res.err != nil {
			errs = append(errs, res.err)
		}
		for _, rr := range res.rrs {
			switch rr := rr.(type) {
			case *dns.A:
				addrs = append(addrs, net.IPAddr{IP: rr.A})
			case *dns.AAAA:
				addrs = append(addrs, net.IPAddr{IP: rr.AAAA})
			}
		}
	}
	if len(addrs) > 0 {
		return addrs, queries, nil
	}
	return nil, queries, worstError(errs)
}

// worstError picks the error that says most about a lookup of both address
// families that found nothing: a failure beats "no such records", because
// the failed query might have found some.
func worstError(errs []error) error {
	for _, err := range errs {
		var de *net.DNSError
		if !errors.As(err, &de) || !de.IsNotFound {
			return err
		}
	}
	for _, err := range errs {
		var rc rcodeError
		if errors.As(err, &rc) && int(rc) == dns.RcodeNameError {
			return err
		}
	}
	return errs[0]
}

func (r *dnsResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	txts, _, err := r.lookupTXTQueries(ctx, name)
	return txts, err
}

func (r *dnsResolver) lookupTXTQueries(ctx context.Context, name string) ([]string, []acme.DNSQuery, error) {
	rrs, queries, err := r.lookup(ctx, dns.Fqdn(name), dns.TypeTXT)
	if err != nil {
		return nil, queries, err
	}
	txts := make([]string, 0, len(rrs))
	for _, rr := range rrs {
		if txt, ok := rr.(*dns.TXT); ok {
			// RFC 8555 §8.4 holds one value per record; a value longer than
			// 255 bytes is split into strings that belong together.
			txts = append(txts, strings.Join(txt.Txt, ""))
		}
	}
	return txts, queries, nil
}

// lookup returns the records of qtype at fqdn, following CNAMEs: first
// within an answer, as recursive servers return the whole chain, then with
// a query for the last target when the answer stops at a CNAME, as an
// authoritative server does for a target outside its zones. It also
// returns the questions answered, each CNAME its own, and the last one
// asked with no answers when the lookup failed.
func (r *dnsResolver) lookup(ctx context.Context, fqdn string, qtype uint16) ([]dns.RR, []acme.DNSQuery, error) {
	host := strings.TrimSuffix(fqdn, ".")
	typ := dns.TypeToString[qtype]
	chain := []string{fqdn}
	qname := fqdn
	var queries []acme.DNSQuery
	unanswered := func(name string) []acme.DNSQuery {
		return append(queries, acme.DNSQuery{Name: strings.TrimSuffix(name, "."), Type: typ})
	}
	for {
		resp, server, err := r.query(ctx, qname, qtype)
		if err != nil {
			return nil, unanswered(qname), queryError(host, server, err)
		}
		name := qname
		for {
			if rrs := ownedBy(resp.Answer, name, qtype); len(rrs) > 0 {
				q := acme.DNSQuery{Name: strings.TrimSuffix(name, "."), Type: typ}
				for _, rr := range rrs {
					q.Answers = append(q.Answers, rdata(rr))
				}
				return rrs, append(queries, q), nil
			}
			cname := ownedBy(resp.Answer, name, dns.TypeCNAME)
			if len(cname) == 0 {
				break
			}
			target := cname[0].(*dns.CNAME).Target
			queries = append(queries, acme.DNSQuery{Name: strings.TrimSuffix(name, "."), Type: "CNAME", Answers: []string{strings.TrimSuffix(target, ".")}})
			name = target
			for _, seen := range chain {
				if strings.EqualFold(seen, name) {
					return nil, queries, &net.DNSError{Err: "CNAME loop (" + chainText(append(chain, name)) + ")", Name: host, Server: server}
				}
			}
			chain = append(chain, name)
			if len(chain)-1 > maxCNAMEs {
				return nil, queries, &net.DNSError{Err: "CNAME chain longer than " + strconv.Itoa(maxCNAMEs) + " (" + chainText(chain) + ")", Name: host, Server: server}
			}
		}
		switch {
		case resp.Rcode == dns.RcodeNameError:
			// After a CNAME the rcode is about the target (RFC 6604).
			return nil, unanswered(name), &net.DNSError{Err: "NXDOMAIN", Name: host, Server: server, IsNotFound: true, UnwrapErr: rcodeError(dns.RcodeNameError)}
		case name == qname:
			return nil, unanswered(name), &net.DNSError{Err: "no " + typ + " records", Name: host, Server: server, IsNotFound: true}
		}
		qname = name
	}
}

// rdata is what a record answers, as a validation record shows it.
func rdata(rr dns.RR) string {
	switch rr := rr.(type) {
	case *dns.A:
		return rr.A.String()
	case *dns.AAAA:
		return rr.AAAA.String()
	case *dns.TXT:
		return strings.Join(rr.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// ownedBy returns the records of rrs of type qtype owned by name.
func ownedBy(rrs []dns.RR, name string, qtype uint16) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if h := rr.Header(); h.Rrtype == qtype && h.Class == dns.ClassINET && strings.EqualFold(h.Name, name) {
			out = append(out, rr)
		}
	}
	return out
}

func chainText(names []string) string {
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = strings.TrimSuffix(n, ".")
	}
	return strings.Join(parts, " → ")
}

// query asks the servers in turn until one gives an answer (NOERROR or
// NXDOMAIN); a timeout, an unreachable server, SERVFAIL or REFUSED moves on
// to the next. It returns the server that answered, or that failed last.
func (r *dnsResolver) query(ctx context.Context, qname string, qtype uint16) (*dns.Msg, string, error) {
	var (
		err    error
		server string
	)
	for i, s := range r.servers {
		server = s
		qctx, cancel := shareContext(ctx, len(r.servers)-i, queryTimeout)
		var resp *dns.Msg
		resp, err = r.exchange(qctx, s, qname, qtype)
		cancel()
		if err == nil {
			if resp.Rcode == dns.RcodeSuccess || resp.Rcode == dns.RcodeNameError {
				return resp, s, nil
			}
			err = rcodeError(resp.Rcode)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, server, err
}

// exchange sends one query to server over UDP, and again over TCP when the
// answer did not fit, through miekg/dns's client: it dials with r.dialer,
// bounds each exchange by ctx's deadline and skips stray UDP datagrams (a
// late answer to an earlier query).
func (r *dnsResolver) exchange(ctx context.Context, server, qname string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype) // with RD: the servers may be recursive resolvers
	m.SetEdns0(ednsSize, false)
	resp, err := r.exchangeOver(ctx, "udp", server, m)
	// A truncated answer may not unpack, yet its header says to retry over
	// TCP.
	if resp != nil && resp.Truncated && resp.Id == m.Id {
		resp, err = r.exchangeOver(ctx, "tcp", server, m)
	}
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// exchangeOver is one query and its answer over network. The client stops
// at ctx's deadline but not when ctx is canceled; a canceled validation
// must not wait out the deadline, so it returns at once and leaves the
// exchange to end at its deadline.
func (r *dnsResolver) exchangeOver(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Dialer: r.dialer}
	type result struct {
		resp *dns.Msg
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, _, err := c.ExchangeContext(ctx, m, server)
		done <- result{resp, err}
	}()
	select {
	case res := <-done:
		return res.resp, res.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// shareContext bounds ctx for the first of n things still to try: at most
// limit, and no more than its share of the time left, so a silent one
// leaves time for those after it.
func shareContext(ctx context.Context, n int, limit time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && n > 0 {
		if share := time.Until(dl) / time.Duration(n); share < limit {
			limit = share
		}
	}
	return context.WithTimeout(ctx, limit)
}

// rcodeError is an answer whose rcode is a failure.
type rcodeError int

func (e rcodeError) Error() string {
	if s, ok := dns.RcodeToString[int(e)]; ok {
		return s
	}
	return "rcode " + strconv.Itoa(int(e))
}

// queryError turns the failure of the last server asked into a
// *net.DNSError, the error Resolver promises.
func queryError(host, server string, err error) error {
	de := &net.DNSError{Name: host, Server: server, UnwrapErr: err}
	var rc rcodeError
	switch {
	case errors.As(err, &rc):
		de.Err = rc.Error()
		de.IsTemporary = int(rc) == dns.RcodeServerFailure
	case isTimeout(err):
		de.Err = "query timed out"
		de.IsTimeout, de.IsTemporary = true, true
	default:
		// The server's address and the socket error are for the log
		// (Server, UnwrapErr), not for the client.
		de.Err = "could not reach the name server"
		de.IsTemporary = true
	}
	return de
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
