package challenges

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// testZone answers for the names the tests use, and NXDOMAIN for others.
type testZone struct {
	mu      sync.Mutex
	queries []string // "udp nx.example.test." etc., in arrival order
}

func (z *testZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	// Authoritative: the Go resolver takes an empty answer from a server
	// that is neither authoritative nor recursive for a lame referral.
	m.Authoritative = true
	if len(r.Question) != 1 {
		m.Rcode = dns.RcodeFormatError
		_ = w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	network := w.RemoteAddr().Network()
	z.mu.Lock()
	z.queries = append(z.queries, network+" "+name)
	z.mu.Unlock()

	a := func(ip string) dns.RR {
		return &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP(ip)}
	}
	aaaa := func(ip string) dns.RR {
		return &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP(ip)}
	}
	var records []dns.RR
	switch name {
	case "v4.example.test.":
		records = []dns.RR{a("127.0.0.1")}
	case "v6.example.test.":
		records = []dns.RR{aaaa("::1")}
	case "dual.example.test.", "other.example.test.":
		records = []dns.RR{a("127.0.0.1"), aaaa("::1")}
	case "blocked.example.test.":
		records = []dns.RR{a("127.0.0.2")}
	case "acme-responder.default.svc.cluster.local.":
		records = []dns.RR{a("127.0.0.1")}
	case "alias.example.test.":
		// Only the CNAME, as an authoritative server answers for a target
		// outside its zones: the resolver must ask for the target itself.
		records = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: "dual.example.test."}}
	case "empty.example.test.":
		// The name exists with no address: NOERROR, no answer.
	case "big.example.test.":
		// Pretend the answer does not fit a datagram, so it must come over TCP.
		if network == "udp" {
			m.Truncated = true
			_ = w.WriteMsg(m)
			return
		}
		records = []dns.RR{a("127.0.0.1")}
	case "servfail.example.test.":
		m.Rcode = dns.RcodeServerFailure
		_ = w.WriteMsg(m)
		return
	case "silent.example.test.":
		return // never answer
	default:
		m.Rcode = dns.RcodeNameError
		_ = w.WriteMsg(m)
		return
	}
	for _, rr := range records {
		if t := rr.Header().Rrtype; t == q.Qtype || t == dns.TypeCNAME {
			m.Answer = append(m.Answer, rr)
		}
	}
	_ = w.WriteMsg(m)
}

func (z *testZone) seen() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.queries)
}

// startDNS serves h over UDP and TCP on one loopback port and returns
// "127.0.0.1:port"; the servers stop when the test ends.
func startDNS(t testing.TB, h dns.Handler) string {
	t.Helper()
	var (
		pc net.PacketConn
		l  net.Listener
	)
	// The TCP port must equal the UDP one, which another process may hold.
	for i := 0; l == nil; i++ {
		var err error
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			pc.Close()
			if i == 20 {
				t.Fatalf("no port free for both UDP and TCP: %v", err)
			}
		}
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: l, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("DNS server: %v", err)
		}
		t.Cleanup(func() {
			_ = srv.Shutdown()
			<-done
		})
	}
	return pc.LocalAddr().String()
}

func TestNewResolverSystem(t *testing.T) {
	// No servers: addresses come from the system, where localhost is
	// loopback by /etc/hosts; "" is no server, as callers with an empty
	// setting pass it.
	for _, servers := range [][]string{nil, {""}} {
		r := NewResolver(servers...)
		addrs, err := r.LookupIPAddr(t.Context(), "localhost")
		if err != nil {
			t.Fatalf("NewResolver(%q).LookupIPAddr(localhost): %v", servers, err)
		}
		for _, a := range addrs {
			if !a.IP.IsLoopback() {
				t.Errorf("localhost = %v, want loopback only", addrs)
			}
		}
		if dr := r.(*dnsResolver); !dr.system || len(dr.servers) == 0 {
			t.Errorf("NewResolver(%q) = %+v, want the system resolver with resolv.conf's servers for TXT", servers, dr)
		}
	}
}

func TestSystemNameservers(t *testing.T) {
	tests := []struct {
		name string
		conf string // "" → no file
		want []string
	}{
		{name: "no file", want: []string{"127.0.0.1:53"}},
		{name: "no nameserver lines", conf: "search example.test\n", want: []string{"127.0.0.1:53"}},
		{name: "servers in order", conf: "nameserver 127.0.0.53\nnameserver ::1\noptions edns0\n", want: []string{"127.0.0.53:53", "[::1]:53"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if tc.conf != "" {
				if err := os.WriteFile(path, []byte(tc.conf), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if got := systemNameservers(path); !slices.Equal(got, tc.want) {
				t.Errorf("systemNameservers = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewResolverServers(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
	}{
		{in: []string{"127.0.0.1:5353", "[::1]:53"}, want: []string{"127.0.0.1:5353", "[::1]:53"}},
		{in: []string{"127.0.0.1", "::1", "[::1]", " 127.0.0.2:53 ", ""}, want: []string{"127.0.0.1:53", "[::1]:53", "[::1]:53", "127.0.0.2:53"}},
	}
	for _, tc := range tests {
		r := NewResolver(tc.in...).(*dnsResolver)
		if r.system || !slices.Equal(r.servers, tc.want) {
			t.Errorf("NewResolver(%q) servers = %q (system %v), want %q", tc.in, r.servers, r.system, tc.want)
		}
	}
}

// deadUDP returns a loopback address on which nothing receives UDP, so a
// query to it is refused at once.
func deadUDP(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

func TestNewResolverServerOrder(t *testing.T) {
	good := startDNS(t, &testZone{})
	silent := startDNS(t, dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {}))
	servfail := startDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		_ = w.WriteMsg(m)
	}))
	tests := []struct {
		name    string
		servers []string
		timeout time.Duration
	}{
		{name: "first refuses", servers: []string{deadUDP(t), good}},
		{name: "first SERVFAIL", servers: []string{servfail, good}},
		// The silent one gets half the time left, the good one the rest.
		{name: "first silent", servers: []string{silent, good}, timeout: 400 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				t.Cleanup(cancel)
			}
			addrs, err := NewResolver(tc.servers...).LookupIPAddr(ctx, "v4.example.test")
			if err != nil {
				t.Fatal(err)
			}
			if len(addrs) != 1 || !addrs[0].IP.Equal(net.ParseIP("127.0.0.1")) {
				t.Errorf("addrs = %v, want [127.0.0.1]", addrs)
			}
		})
	}
}

func TestNewResolver(t *testing.T) {
	zone := &testZone{}
	r := NewResolver(startDNS(t, zone))

	tests := []struct {
		name         string
		host         string
		timeout      time.Duration
		want         []string
		wantNotFound bool
		wantErr      bool
		wantQueries  []string // exactly these, in any order; nil: not checked
	}{
		{name: "A only", host: "v4.example.test", want: []string{"127.0.0.1"}},
		{name: "AAAA only", host: "v6.example.test", want: []string{"::1"}},
		{name: "both families", host: "dual.example.test", want: []string{"127.0.0.1", "::1"}},
		{name: "already rooted", host: "v4.example.test.", want: []string{"127.0.0.1"}},
		{name: "cluster service name", host: "acme-responder.default.svc.cluster.local", want: []string{"127.0.0.1"}},
		{
			name: "CNAME target asked for separately", host: "alias.example.test", want: []string{"127.0.0.1", "::1"},
			wantQueries: []string{"udp alias.example.test.", "udp alias.example.test.", "udp dual.example.test.", "udp dual.example.test."},
		},
		{name: "upper case", host: "V4.Example.TEST", want: []string{"127.0.0.1"}},
		{name: "IP literal is not looked up", host: "127.0.0.1", want: []string{"127.0.0.1"}, wantQueries: []string{}},
		{
			name: "truncated over UDP, retried over TCP", host: "big.example.test", want: []string{"127.0.0.1"},
			wantQueries: []string{"udp big.example.test.", "udp big.example.test.", "tcp big.example.test.", "tcp big.example.test."},
		},
		{
			// Only the name itself is asked for: no search domains are tried.
			name: "NXDOMAIN", host: "nx.example.test", wantErr: true, wantNotFound: true,
			wantQueries: []string{"udp nx.example.test.", "udp nx.example.test."},
		},
		{name: "no address records", host: "empty.example.test", wantErr: true, wantNotFound: true},
		{name: "SERVFAIL", host: "servfail.example.test", wantErr: true},
		{name: "server never answers", host: "silent.example.test", timeout: 200 * time.Millisecond, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				t.Cleanup(cancel)
			}
			before := len(zone.seen())
			addrs, err := r.LookupIPAddr(ctx, tc.host)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("LookupIPAddr(%q) = %v, want an error", tc.host, addrs)
				}
				var dnsErr *net.DNSError
				if !errors.As(err, &dnsErr) {
					t.Fatalf("error %v is %T, want *net.DNSError", err, err)
				}
				if dnsErr.IsNotFound != tc.wantNotFound {
					t.Errorf("IsNotFound = %v, want %v (%v)", dnsErr.IsNotFound, tc.wantNotFound, err)
				}
			} else {
				if err != nil {
					t.Fatalf("LookupIPAddr(%q): %v", tc.host, err)
				}
				var got []string
				for _, a := range addrs {
					got = append(got, a.IP.String())
				}
				slices.Sort(got)
				if !slices.Equal(got, tc.want) {
					t.Errorf("LookupIPAddr(%q) = %v, want %v", tc.host, got, tc.want)
				}
			}
			if tc.wantQueries != nil {
				got := zone.seen()[before:]
				// One A and one AAAA query per transport; their order is the resolver's.
				slices.Sort(got)
				want := slices.Clone(tc.wantQueries)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("queries = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestOrderAddrs(t *testing.T) {
	ip := func(s string) net.IPAddr { return net.IPAddr{IP: net.ParseIP(s)} }
	tests := []struct {
		name string
		in   []net.IPAddr
		want []string
	}{
		{name: "empty", in: nil, want: []string{}},
		{name: "IPv6 first", in: []net.IPAddr{ip("127.0.0.1"), ip("::1")}, want: []string{"::1", "127.0.0.1"}},
		{
			name: "family order kept",
			in:   []net.IPAddr{ip("127.0.0.2"), ip("::2"), ip("127.0.0.1"), ip("::1")},
			want: []string{"::2", "::1", "127.0.0.2", "127.0.0.1"},
		},
		{name: "duplicates dropped", in: []net.IPAddr{ip("127.0.0.1"), ip("::1"), ip("127.0.0.1"), ip("::1")}, want: []string{"::1", "127.0.0.1"}},
		{name: "IPv4 in 16-byte form is IPv4", in: []net.IPAddr{{IP: net.ParseIP("127.0.0.1").To16()}, ip("::1")}, want: []string{"::1", "127.0.0.1"}},
		{name: "nil IP dropped", in: []net.IPAddr{{}, ip("::1")}, want: []string{"::1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := []string{}
			for _, a := range orderAddrs(tc.in) {
				got = append(got, a.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("orderAddrs = %v, want %v", got, tc.want)
			}
		})
	}
}

// The system resolver stays usable as Config.Resolver.
var _ Resolver = (*net.Resolver)(nil)
