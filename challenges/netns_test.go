package challenges

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/miekg/dns"
)

// netnsChild marks the test binary re-run inside the network namespace.
const netnsChild = "ACMED_TEST_NETNS_CHILD"

// netnsSetup gives the namespace's loopback the metadata address in its
// IPv4 and NAT64 forms and a private address: a dial to them that should
// have been refused reaches a canary there instead of failing quietly.
const netnsSetup = `set -e
ip link set lo up
ip addr add 169.254.169.254/32 dev lo
ip addr add 10.9.9.9/32 dev lo
ip -6 addr add 64:ff9b::a9fe:a9fe/128 dev lo nodad
exec "$0" "$@"`

// TestBlockedCanaryInNamespace runs the canary test in a network namespace
// of its own (unshare -rn), where 169.254.169.254 and 64:ff9b::a9fe:a9fe
// are addresses of its loopback: nothing the test dials ever leaves the
// machine, and nothing of the host's network is reachable from it.
func TestBlockedCanaryInNamespace(t *testing.T) {
	if os.Getenv(netnsChild) != "" {
		canaryInNamespace(t)
		return
	}
	if err := exec.Command("unshare", "-rn", "true").Run(); err != nil {
		t.Skipf("unshare -rn is unavailable (%v): cannot create the network namespace the canary needs", err)
	}
	cmd := exec.Command("unshare", "-rn", "sh", "-c", netnsSetup, os.Args[0],
		"-test.run=^TestBlockedCanaryInNamespace$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChild+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in the namespace:\n%s", out)
	if err != nil {
		t.Fatalf("the test in the namespace failed: %v", err)
	}
	if !strings.Contains(string(out), "--- PASS: TestBlockedCanaryInNamespace") {
		t.Fatal("the test in the namespace did not pass")
	}
}

// canary counts the connections it accepts on addr, and answers each as
// the client's server would, so a connection that got through would also
// make the validation succeed.
type canary struct{ hits atomic.Int64 }

func (c *canary) listen(t *testing.T, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("canary on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, testKeyAuth)
	}), ConnState: func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.hits.Add(1)
		}
	}}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

// metaZone answers names that lead to the metadata address in each form.
func metaZone() dns.Handler {
	return dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		q := r.Question[0]
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: 60}
		}
		switch name := strings.ToLower(q.Name); {
		case name == "meta.example.test." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP("169.254.169.254")})
		case name == "nat64.example.test." && q.Qtype == dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP("64:ff9b::a9fe:a9fe")})
		case name == "mapped.example.test." && q.Qtype == dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: net.ParseIP("::ffff:169.254.169.254")})
		case name == "alias.example.test.":
			m.Answer = append(m.Answer, &dns.CNAME{Hdr: hdr(dns.TypeCNAME), Target: "meta.example.test."})
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: "meta.example.test.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("169.254.169.254")})
			}
		case name == "private.example.test." && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP("10.9.9.9")})
		case strings.HasPrefix(name, "redirect-") && q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: net.ParseIP("127.0.0.1")})
		}
		_ = w.WriteMsg(m)
	})
}

func canaryInNamespace(t *testing.T) {
	// Inside the namespace: prove it is one before dialing anything.
	if !listenable("169.254.169.254") {
		t.Fatal("169.254.169.254 is not an address here: not inside the test's namespace")
	}
	port := closedPort(t)
	ps := strconv.Itoa(port)
	meta, private := &canary{}, &canary{}
	meta.listen(t, "169.254.169.254:"+ps)
	meta.listen(t, "[64:ff9b::a9fe:a9fe]:"+ps)
	private.listen(t, "10.9.9.9:"+ps)
	// The client's own server, at every redirect-*.example.test, redirects
	// to the host its name picks.
	redirects := map[string]string{
		"redirect-ip":      "169.254.169.254",
		"redirect-nat64":   "[64:ff9b::a9fe:a9fe]",
		"redirect-mapped":  "[::ffff:169.254.169.254]",
		"redirect-name":    "meta.example.test",
		"redirect-name64":  "nat64.example.test",
		"redirect-private": "10.9.9.9",
	}
	serveAt(t, "127.0.0.1", port, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		to, ok := redirects[strings.Split(r.Host, ".")[0]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "http://"+to+":"+ps+testPath, http.StatusFound)
	}))
	res := NewResolver(startDNS(t, metaZone()))

	prefixes := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	flagSets := []struct {
		name             string
		blocked, allowed []netip.Prefix
	}{
		{name: "defaults"},
		{name: "blocked-networks set", blocked: prefixes("10.0.0.0/8", "192.168.0.0/16")},
		{name: "allowed-networks another range", allowed: prefixes("169.254.10.0/24", "10.0.0.0/8")},
		{name: "allowed-networks the NAT64 and mapped ranges", allowed: prefixes("64:ff9b::/96", "::ffff:0:0/96")},
		{name: "both set", blocked: prefixes("10.0.0.0/8"), allowed: prefixes("10.9.0.0/16", "fd00::/8")},
	}
	ip := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierIP, Value: v} }
	name := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierDNS, Value: v} }
	targets := []struct {
		name string
		typ  acme.ChallengeType
		id   acme.Identifier
	}{
		{name: "IP identifier", typ: acme.ChallengeHTTP01, id: ip("169.254.169.254")},
		{name: "NAT64 literal", typ: acme.ChallengeHTTP01, id: ip("64:ff9b::a9fe:a9fe")},
		{name: "IPv4-mapped literal", typ: acme.ChallengeHTTP01, id: ip("::ffff:169.254.169.254")},
		{name: "tls-alpn-01 IP identifier", typ: acme.ChallengeTLSALPN01, id: ip("169.254.169.254")},
		{name: "tls-alpn-01 NAT64 literal", typ: acme.ChallengeTLSALPN01, id: ip("64:ff9b::a9fe:a9fe")},
		{name: "DNS answer", typ: acme.ChallengeHTTP01, id: name("meta.example.test")},
		{name: "DNS answer in NAT64 form", typ: acme.ChallengeHTTP01, id: name("nat64.example.test")},
		{name: "DNS answer in IPv4-mapped form", typ: acme.ChallengeHTTP01, id: name("mapped.example.test")},
		{name: "DNS answer through a CNAME", typ: acme.ChallengeHTTP01, id: name("alias.example.test")},
		{name: "tls-alpn-01 DNS answer", typ: acme.ChallengeTLSALPN01, id: name("meta.example.test")},
		{name: "redirect to the address", typ: acme.ChallengeHTTP01, id: name("redirect-ip.example.test")},
		{name: "redirect to the NAT64 literal", typ: acme.ChallengeHTTP01, id: name("redirect-nat64.example.test")},
		{name: "redirect to the IPv4-mapped literal", typ: acme.ChallengeHTTP01, id: name("redirect-mapped.example.test")},
		{name: "redirect to a name resolving to it", typ: acme.ChallengeHTTP01, id: name("redirect-name.example.test")},
		{name: "redirect to a name resolving to its NAT64 form", typ: acme.ChallengeHTTP01, id: name("redirect-name64.example.test")},
	}
	for _, fs := range flagSets {
		for _, tc := range targets {
			t.Run(fs.name+"/"+tc.name, func(t *testing.T) {
				v := New(Config{Resolver: res, HTTPPort: port, TLSALPNPort: port, BlockedNetworks: fs.blocked, AllowedNetworks: fs.allowed})
				out, err := v.Validate(t.Context(), "a", tc.typ, tc.id, testToken, testKeyAuth)
				if err != nil {
					t.Fatalf("Validate: not performed: %v", err)
				}
				if out.Problem == nil {
					t.Fatalf("Validate succeeded; records %+v", out.Records)
				}
				t.Logf("problem: %s", out.Problem.Detail)
				if !strings.Contains(out.Problem.Detail, "may not connect to") {
					t.Errorf("problem %q does not say the address is blocked", out.Problem.Detail)
				}
				if n := meta.hits.Load(); n != 0 {
					t.Fatalf("the canary on the metadata address got %d connections", n)
				}
			})
		}
	}
	// The dialer itself refuses, at the address the kernel would connect
	// to, even when asked directly: no code path dials past the guard.
	t.Run("the validation dialer itself", func(t *testing.T) {
		v := New(Config{Resolver: res, AllowedNetworks: prefixes("64:ff9b::/96")})
		for _, host := range []string{"169.254.169.254", "64:ff9b::a9fe:a9fe", "::ffff:169.254.169.254"} {
			conn, err := v.dialer.DialContext(t.Context(), "tcp", net.JoinHostPort(host, ps))
			var be *blockedError
			if !errors.As(err, &be) {
				if conn != nil {
					conn.Close()
				}
				t.Errorf("dialing %s: %v, want it refused as blocked", host, err)
			}
		}
		if n := meta.hits.Load(); n != 0 {
			t.Fatalf("the canary on the metadata address got %d connections", n)
		}
	})
	// Blocking 10.0.0.0/8 keeps the private canary unreached too.
	t.Run("operator-blocked private range", func(t *testing.T) {
		v := New(Config{Resolver: res, HTTPPort: port, BlockedNetworks: prefixes("10.0.0.0/8")})
		for _, id := range []acme.Identifier{ip("10.9.9.9"), name("private.example.test"), ip("64:ff9b::a09:909"), name("redirect-private.example.test")} {
			out, err := v.Validate(t.Context(), "a", acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			if err != nil || out.Problem == nil {
				t.Fatalf("%s: %+v, %v; want a problem", id.Value, out, err)
			}
		}
		if n := private.hits.Load(); n != 0 {
			t.Fatalf("the canary on 10.9.9.9 got %d connections", n)
		}
	})
	// The control: opened explicitly, the metadata canary is reached, so
	// the zero counts above mean blocked, not unreachable.
	t.Run("control: explicitly allowed, the canary is reached", func(t *testing.T) {
		v := New(Config{Resolver: res, HTTPPort: port, AllowedNetworks: prefixes("169.254.169.254/32")})
		out, err := v.Validate(t.Context(), "a", acme.ChallengeHTTP01, ip("169.254.169.254"), testToken, testKeyAuth)
		if err != nil || out.Problem != nil {
			t.Fatalf("Validate = %+v, %v; want valid", out, err)
		}
		if meta.hits.Load() == 0 {
			t.Fatal("the canary got no connection although its address was allowed")
		}
	})
}
