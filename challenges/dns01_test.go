package challenges

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/miekg/dns"
)

// testDigest is the TXT value dns-01 expects for testKeyAuth.
func testDigest() string {
	sum := sha256.Sum256([]byte(testKeyAuth))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// txtZone is an authoritative server for records given in zone-file syntax.
// A name with a CNAME is answered with the CNAME alone, as a server answers
// for a target outside its zones, so the validator must ask again. Names in
// truncate answer over UDP with TC set and no records; names in silent are
// never answered; names in rcode get that rcode.
type txtZone struct {
	records  map[string][]dns.RR // by lower-case FQDN
	truncate map[string]bool
	silent   map[string]bool
	rcode    map[string]int

	mu      sync.Mutex
	queries []string // "udp TXT _acme-challenge.a.example." etc.
}

func newTXTZone(t testing.TB, rrs ...string) *txtZone {
	t.Helper()
	z := &txtZone{records: map[string][]dns.RR{}, truncate: map[string]bool{}, silent: map[string]bool{}, rcode: map[string]int{}}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("record %q: %v", s, err)
		}
		name := strings.ToLower(rr.Header().Name)
		z.records[name] = append(z.records[name], rr)
	}
	return z
}

func (z *txtZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
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
	z.queries = append(z.queries, network+" "+dns.TypeToString[q.Qtype]+" "+name)
	z.mu.Unlock()

	switch rrs, ok := z.records[name]; {
	case z.silent[name]:
		return
	case z.rcode[name] != 0:
		m.Rcode = z.rcode[name]
	case z.truncate[name] && network == "udp":
		m.Truncated = true
	case !ok:
		m.Rcode = dns.RcodeNameError
	default:
		for _, rr := range rrs {
			if t := rr.Header().Rrtype; t == q.Qtype || t == dns.TypeCNAME {
				m.Answer = append(m.Answer, rr)
			}
		}
	}
	_ = w.WriteMsg(m)
}

func (z *txtZone) seen() []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	return slices.Clone(z.queries)
}

func TestDNS01(t *testing.T) {
	digest := testDigest()
	txt := func(name string, values ...string) string {
		quoted := make([]string, len(values))
		for i, v := range values {
			quoted[i] = fmt.Sprintf("%q", v)
		}
		return name + " 60 IN TXT " + strings.Join(quoted, " ")
	}
	cname := func(name, target string) string { return name + " 60 IN CNAME " + target }

	zone := newTXTZone(t,
		txt("_acme-challenge.good.example.", digest),
		txt("_acme-challenge.several.example.", "stale-value"),
		txt("_acme-challenge.several.example.", digest),
		txt("_acme-challenge.several.example.", "other-client"),
		txt("_acme-challenge.wrong.example.", "abc"),
		txt("_acme-challenge.wrong.example.", "def"),
		txt("_acme-challenge.split.example.", digest[:20], digest[20:]),
		"_acme-challenge.notxt.example. 60 IN A 127.0.0.1",
		cname("_acme-challenge.a.example.", "a.validation.example."),
		txt("a.validation.example.", digest),
		cname("_acme-challenge.b.example.", "b1.example."),
		cname("b1.example.", "b2.validation.example."),
		txt("b2.validation.example.", digest),
		cname("_acme-challenge.dangling.example.", "gone.validation.example."),
		cname("_acme-challenge.loop.example.", "loop2.example."),
		cname("loop2.example.", "_acme-challenge.loop.example."),
		txt("_acme-challenge.big.example.", digest),
	)
	// A chain one hop longer than is followed.
	for i := range maxCNAMEs + 1 {
		from := fmt.Sprintf("hop%d.long.example.", i)
		if i == 0 {
			from = "_acme-challenge.long.example."
		}
		rr, _ := dns.NewRR(cname(from, fmt.Sprintf("hop%d.long.example.", i+1)))
		zone.records[from] = []dns.RR{rr}
	}
	zone.truncate["_acme-challenge.big.example."] = true
	zone.silent["_acme-challenge.silent.example."] = true
	zone.rcode["_acme-challenge.servfail.example."] = dns.RcodeServerFailure
	zone.rcode["_acme-challenge.refused.example."] = dns.RcodeRefused
	server := startDNS(t, zone)

	tests := []struct {
		name        string
		domain      string
		servers     []string // default: the zone's server
		timeout     time.Duration
		wantErr     *acme.Problem
		want        []string
		notWant     []string
		wantQueries []string // exactly these, in order; nil: not checked
	}{
		{name: "correct TXT", domain: "good.example", wantQueries: []string{"udp TXT _acme-challenge.good.example."}},
		{name: "one of several values", domain: "several.example"},
		{name: "strings of one record are joined", domain: "split.example"},
		{name: "wildcard prefix validates the base name", domain: "*.good.example"},
		{
			name: "wrong TXT", domain: "wrong.example",
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{`Incorrect TXT record "abc" (and 1 more) found at _acme-challenge.wrong.example`},
			notWant: []string{"_acme-challenge.wrong.example."},
		},
		{
			name: "name without TXT", domain: "notxt.example",
			wantErr: acme.ErrDNS, want: []string{"No TXT record found at _acme-challenge.notxt.example"},
		},
		{
			name: "NXDOMAIN", domain: "nx.example",
			wantErr: acme.ErrDNS, want: []string{"NXDOMAIN", "_acme-challenge.nx.example"},
		},
		{
			name: "CNAME into a validation zone", domain: "a.example",
			wantQueries: []string{"udp TXT _acme-challenge.a.example.", "udp TXT a.validation.example."},
		},
		{
			name: "chain of two CNAMEs", domain: "b.example",
			wantQueries: []string{"udp TXT _acme-challenge.b.example.", "udp TXT b1.example.", "udp TXT b2.validation.example."},
		},
		{
			name: "CNAME to a missing name", domain: "dangling.example",
			wantErr: acme.ErrDNS, want: []string{"NXDOMAIN", "_acme-challenge.dangling.example"},
		},
		{
			name: "CNAME loop", domain: "loop.example",
			wantErr: acme.ErrDNS, want: []string{"CNAME loop", "_acme-challenge.loop.example → loop2.example → _acme-challenge.loop.example"},
		},
		{
			name: "CNAME chain too long", domain: "long.example",
			wantErr: acme.ErrDNS, want: []string{"CNAME chain longer than 8"},
		},
		{
			name: "truncated over UDP, answered over TCP", domain: "big.example",
			wantQueries: []string{"udp TXT _acme-challenge.big.example.", "tcp TXT _acme-challenge.big.example."},
		},
		{
			name: "SERVFAIL", domain: "servfail.example",
			wantErr: acme.ErrDNS, want: []string{"DNS problem: SERVFAIL looking up TXT for _acme-challenge.servfail.example"},
		},
		{
			name: "REFUSED", domain: "refused.example",
			wantErr: acme.ErrDNS, want: []string{"REFUSED", "_acme-challenge.refused.example"},
		},
		{
			name: "first name server dead, second good", domain: "good.example",
			servers: []string{deadUDP(t), server},
		},
		{
			name: "server never answers", domain: "silent.example", timeout: 300 * time.Millisecond,
			wantErr: acme.ErrDNS, want: []string{"DNS problem: query timed out looking up TXT for _acme-challenge.silent.example"},
		},
		{
			name: "every server dead", domain: "good.example", servers: []string{deadUDP(t), deadUDP(t)},
			wantErr: acme.ErrDNS, want: []string{"_acme-challenge.good.example"},
			notWant: []string{"127.0.0.1"}, // the validation server's resolvers are not the client's business
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			servers := tc.servers
			if servers == nil {
				servers = []string{server}
			}
			v := New(Config{Nameservers: servers, Timeout: tc.timeout})
			id := acme.Identifier{Type: acme.IdentifierDNS, Value: tc.domain}
			before := len(zone.seen())

			err := validateErr(v, t.Context(), acme.ChallengeDNS01, id, testToken, testKeyAuth)
			checkProblem(t, err, tc.wantErr, id, tc.want, tc.notWant)
			if tc.wantQueries != nil {
				if got := zone.seen()[before:]; !slices.Equal(got, tc.wantQueries) {
					t.Errorf("queries = %q, want %q", got, tc.wantQueries)
				}
			}
		})
	}
}

// TestDNS01Query checks the query itself: recursion desired, so a
// recursive resolver may be configured, and EDNS0 so a few TXT records fit.
func TestDNS01Query(t *testing.T) {
	got := make(chan *dns.Msg, 1)
	server := startDNS(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		got <- r.Copy()
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	}))
	v := New(Config{Nameservers: []string{server}})
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "Mixed.Example"}
	err := validateErr(v, t.Context(), acme.ChallengeDNS01, id, testToken, testKeyAuth)
	checkProblem(t, err, acme.ErrDNS, id, []string{"NXDOMAIN"}, nil)
	q := <-got
	if !q.RecursionDesired {
		t.Error("query without RD")
	}
	if q.IsEdns0() == nil {
		t.Error("query without EDNS0")
	}
	if len(q.Question) != 1 || q.Question[0].Name != "_acme-challenge.Mixed.Example." || q.Question[0].Qtype != dns.TypeTXT {
		t.Errorf("question = %v, want TXT _acme-challenge.Mixed.Example.", q.Question)
	}
}
