package challengetest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// exchange asks d one question over network ("udp" or "tcp"), with an EDNS
// UDP size when ednsSize > 0.
func exchange(t *testing.T, d *DNS, network, name string, qtype uint16, ednsSize uint16) *dns.Msg {
	t.Helper()
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	if ednsSize > 0 {
		q.SetEdns0(ednsSize, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: max(ednsSize, dns.MinMsgSize)}
	r, _, err := c.Exchange(q, d.Addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, dns.TypeToString[qtype], name, err)
	}
	if !r.Authoritative {
		t.Errorf("%s %s: AA not set", dns.TypeToString[qtype], name)
	}
	return r
}

// rdata renders answers as "TYPE data", e.g. "A 127.0.0.1", in order.
func rdata(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, "A "+rr.A.String())
		case *dns.AAAA:
			out = append(out, "AAAA "+rr.AAAA.String())
		case *dns.CNAME:
			out = append(out, "CNAME "+rr.Target)
		case *dns.TXT:
			out = append(out, "TXT "+strings.Join(rr.Txt, ""))
		default:
			out = append(out, rr.String())
		}
	}
	return out
}

func TestDNSAnswers(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.7")
	v6 := netip.MustParseAddr("2001:db8::7")
	long := strings.Repeat("x", 300)
	tests := []struct {
		name  string
		setup func(d *DNS)
		qname string
		qtype uint16
		rcode int
		want  []string
	}{
		{"default A", nil, "anything.test.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}},
		{"no AAAA by default", nil, "anything.test.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"no TXT by default", nil, "anything.test.", dns.TypeTXT, dns.RcodeSuccess, nil},
		{"SetA IPv4", func(d *DNS) { d.SetA("a.test", v4) }, "a.test.", dns.TypeA, dns.RcodeSuccess, []string{"A 192.0.2.7"}},
		{"SetA IPv6", func(d *DNS) { d.SetA("a.test", v6) }, "a.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA 2001:db8::7"}},
		{"SetA IPv6 drops default A", func(d *DNS) { d.SetA("a.test", v6) }, "a.test.", dns.TypeA, dns.RcodeSuccess, nil},
		{"SetA only that name", func(d *DNS) { d.SetA("a.test", v4) }, "b.test.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}},
		{"AddA keeps default of other family", func(d *DNS) {
			d.SetDefault(netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1"))
			d.AddA("a.test", v4)
		}, "a.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA ::1"}},
		{"ClearA", func(d *DNS) { d.SetA("a.test", v4); d.ClearA("a.test") }, "a.test.", dns.TypeA, dns.RcodeSuccess, []string{"A 127.0.0.1"}},
		{"SetDefault", func(d *DNS) { d.SetDefault(v4, v6) }, "other.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"AAAA 2001:db8::7"}},
		{"SetDefault none", func(d *DNS) { d.SetDefault() }, "other.test.", dns.TypeA, dns.RcodeSuccess, nil},
		{"TXT values", func(d *DNS) {
			d.AddTXT("_acme-challenge.a.test", "one")
			d.AddTXT("_acme-challenge.a.test", "two")
			d.AddTXT("_acme-challenge.a.test", "one")
		}, "_acme-challenge.a.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT one", "TXT two"}},
		{"SetTXT replaces", func(d *DNS) { d.AddTXT("t.test", "old"); d.SetTXT("t.test", "x", "y") }, "t.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT x", "TXT y"}},
		{"RemoveTXT", func(d *DNS) { d.SetTXT("t.test", "x", "y"); d.RemoveTXT("t.test", "x") }, "t.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT y"}},
		{"ClearTXT", func(d *DNS) { d.SetTXT("t.test", "x", "y"); d.ClearTXT("t.test") }, "t.test.", dns.TypeTXT, dns.RcodeSuccess, nil},
		{"TXT over 255 bytes", func(d *DNS) { d.SetTXT("t.test", long) }, "t.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT " + long}},
		{"TXT escapes", func(d *DNS) { d.SetTXT("t.test", `a"b\c`) }, "t.test.", dns.TypeTXT, dns.RcodeSuccess, []string{`TXT a\"b\\c`}},
		{"names ignore case and root dot", func(d *DNS) { d.SetTXT("T.Example.TEST", "v") }, "t.example.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT v"}},
		{"CNAME then A", func(d *DNS) { d.SetCNAME("alias.test", "target.test"); d.SetA("target.test", v4) }, "alias.test.", dns.TypeA, dns.RcodeSuccess, []string{"CNAME target.test.", "A 192.0.2.7"}},
		{"CNAME then TXT", func(d *DNS) {
			d.SetCNAME("_acme-challenge.a.test", "_acme-challenge.b.test.")
			d.SetTXT("_acme-challenge.b.test", "v")
		}, "_acme-challenge.a.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"CNAME _acme-challenge.b.test.", "TXT v"}},
		{"CNAME query", func(d *DNS) { d.SetCNAME("alias.test", "target.test") }, "alias.test.", dns.TypeCNAME, dns.RcodeSuccess, []string{"CNAME target.test."}},
		{"CNAME replaced by TXT", func(d *DNS) { d.SetCNAME("alias.test", "target.test"); d.SetTXT("alias.test", "v") }, "alias.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT v"}},
		{"CNAME to removed name", func(d *DNS) { d.SetCNAME("alias.test", "gone.test"); d.Remove("gone.test") }, "alias.test.", dns.TypeA, dns.RcodeNameError, []string{"CNAME gone.test."}},
		{"CNAME loop", func(d *DNS) { d.SetCNAME("x.test", "y.test"); d.SetCNAME("y.test", "x.test") }, "x.test.", dns.TypeA, dns.RcodeServerFailure, nil},
		{"Remove A", func(d *DNS) { d.Remove("gone.test.") }, "gone.test.", dns.TypeA, dns.RcodeNameError, nil},
		{"Remove TXT", func(d *DNS) { d.SetTXT("gone.test", "v"); d.Remove("Gone.Test") }, "gone.test.", dns.TypeTXT, dns.RcodeNameError, nil},
		{"clear after Remove", func(d *DNS) { d.Remove("gone.test"); d.ClearTXT("gone.test"); d.ClearA("gone.test") }, "gone.test.", dns.TypeTXT, dns.RcodeNameError, nil},
		{"set after Remove", func(d *DNS) { d.Remove("back.test"); d.AddTXT("back.test", "v") }, "back.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"TXT v"}},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				d := StartDNS(t)
				if tt.setup != nil {
					tt.setup(d)
				}
				r := exchange(t, d, network, tt.qname, tt.qtype, 0)
				if r.Rcode != tt.rcode {
					t.Errorf("rcode %s, want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
				}
				if got := rdata(r.Answer); !slices.Equal(got, tt.want) {
					t.Errorf("answer %q, want %q", got, tt.want)
				}
			})
		}
	}
}

func TestDNSEchoesQuestionCase(t *testing.T) {
	d := StartDNS(t)
	r := exchange(t, d, "udp", "MiXeD.TeSt.", dns.TypeA, 0)
	if len(r.Answer) != 1 || r.Answer[0].Header().Name != "MiXeD.TeSt." {
		t.Fatalf("answer %v, want the owner as asked, for resolvers that randomize case", r.Answer)
	}
}

func TestDNSTruncation(t *testing.T) {
	d := StartDNS(t)
	const name = "_acme-challenge.many.test."
	var want []string
	for i := range 40 {
		v := fmt.Sprintf("%02d-%s", i, strings.Repeat("v", 40))
		d.AddTXT(name, v)
		want = append(want, "TXT "+v)
	}
	tests := []struct {
		network  string
		edns     uint16
		truncate bool
	}{
		{"udp", 0, true},    // 512 bytes without EDNS
		{"udp", 1232, true}, // still too small for ~2 KB
		{"udp", 4096, false},
		{"tcp", 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.network, tt.edns), func(t *testing.T) {
			r := exchange(t, d, tt.network, name, dns.TypeTXT, tt.edns)
			if r.Truncated != tt.truncate {
				t.Fatalf("TC = %v, want %v", r.Truncated, tt.truncate)
			}
			got := rdata(r.Answer)
			if tt.truncate {
				if len(got) == 0 || len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
					t.Fatalf("truncated answer has %d records, want a prefix of %d", len(got), len(want))
				}
				limit := max(int(tt.edns), dns.MinMsgSize)
				r.Compress = true // as it was sent
				if n := r.Len(); n > limit {
					t.Fatalf("truncated answer is %d bytes, over %d", n, limit)
				}
				// What a client does with TC: ask again over TCP.
				r = exchange(t, d, "tcp", name, dns.TypeTXT, tt.edns)
				got = rdata(r.Answer)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("answer has %d records, want all %d", len(got), len(want))
			}
		})
	}
}

// TestDNSGoResolver checks the server against Go's own resolver, which
// retries truncated answers over TCP and takes an empty answer without AA
// for a lame referral rather than "no such record".
func TestDNSGoResolver(t *testing.T) {
	d := StartDNS(t)
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("%02d-%s", i, strings.Repeat("v", 40)))
	}
	d.SetTXT("many.test", many...)
	d.Remove("gone.test")
	r := &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, d.Addr)
		},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)

	got, err := r.LookupTXT(ctx, "many.test")
	if err != nil || !slices.Equal(got, many) {
		t.Errorf("LookupTXT(many.test) = %d records, %v; want %d", len(got), err, len(many))
	}
	tests := []struct {
		name   string
		lookup func() error
	}{
		{"no TXT", func() error { _, err := r.LookupTXT(ctx, "empty.test"); return err }},
		{"removed", func() error { _, err := r.LookupHost(ctx, "gone.test"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var dnsErr *net.DNSError
			if err := tt.lookup(); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
				t.Fatalf("err = %v, want a not-found DNSError", err)
			}
		})
	}
	addrs, err := r.LookupHost(ctx, "default.test")
	if err != nil || !slices.Equal(addrs, []string{"127.0.0.1"}) {
		t.Errorf("LookupHost(default.test) = %v, %v; want [127.0.0.1]", addrs, err)
	}
}

func TestListenDNS(t *testing.T) {
	tests := []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{"loopback", "127.0.0.1:0", false},
		{"IPv6 loopback", "[::1]:0", false},
		{"no port", "127.0.0.1", true},
		{"bad host", "256.0.0.1:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := ListenDNS(tt.addr)
			if tt.wantErr {
				if err == nil {
					d.Close()
					t.Fatalf("ListenDNS(%q) succeeded", tt.addr)
				}
				return
			}
			if err != nil {
				if tt.addr == "[::1]:0" {
					t.Skipf("no IPv6 loopback: %v", err)
				}
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Close() })
			for _, network := range []string{"udp", "tcp"} {
				if r := exchange(t, d, network, "x.test.", dns.TypeA, 0); len(r.Answer) != 1 {
					t.Errorf("%s: answer %v", network, r.Answer)
				}
			}
			if err := d.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if err := d.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestListenDNSPortInUse(t *testing.T) {
	d := StartDNS(t)
	if d2, err := ListenDNS(d.Addr); err == nil {
		d2.Close()
		t.Fatalf("second ListenDNS(%s) succeeded", d.Addr)
	}
}
