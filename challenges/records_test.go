package challenges

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
)

// TestHTTP01Records checks the records of http-01: one per URL fetched,
// the first and each redirect, with what each resolved and connected to,
// up to the URL that failed.
func TestHTTP01Records(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	var port int
	port = serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch host, _, _ := net.SplitHostPort(r.Host); host {
		case "v4.example.test":
			http.Redirect(w, r, "http://alias.example.test:"+strconv.Itoa(port)+testPath, http.StatusFound)
		case "alias.example.test":
			http.Redirect(w, r, "http://127.0.0.1:"+strconv.Itoa(port)+"/next", http.StatusMovedPermanently)
		case "127.0.0.1":
			if r.URL.Path == "/next" {
				fmt.Fprint(w, testKeyAuth)
				return
			}
			http.Redirect(w, r, "http://nx.example.test:"+strconv.Itoa(port)+testPath, http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	ps := strconv.Itoa(port)
	first := acme.ValidationRecord{
		URL: "http://v4.example.test:" + ps + testPath, Hostname: "v4.example.test", Port: ps,
		AddressesResolved: []string{"127.0.0.1"}, AddressUsed: "127.0.0.1",
		Queries: []acme.DNSQuery{{Name: "v4.example.test", Type: "A", Answers: []string{"127.0.0.1"}}, {Name: "v4.example.test", Type: "AAAA"}},
	}
	alias := acme.ValidationRecord{
		URL: "http://alias.example.test:" + ps + testPath, Hostname: "alias.example.test", Port: ps,
		AddressesResolved: []string{"::1", "127.0.0.1"}, AddressUsed: "127.0.0.1",
		Queries: []acme.DNSQuery{
			{Name: "alias.example.test", Type: "CNAME", Answers: []string{"dual.example.test"}},
			{Name: "dual.example.test", Type: "A", Answers: []string{"127.0.0.1"}},
			{Name: "alias.example.test", Type: "CNAME", Answers: []string{"dual.example.test"}},
			{Name: "dual.example.test", Type: "AAAA", Answers: []string{"::1"}},
		},
	}
	if !listenable("::1") {
		t.Skip("no ::1: the records of dual.example.test would differ")
	}
	tests := []struct {
		name    string
		id      string
		want    []acme.ValidationRecord
		problem bool
	}{
		{
			name: "valid after two redirects",
			id:   "v4.example.test",
			want: []acme.ValidationRecord{first, alias, {
				URL: "http://127.0.0.1:" + ps + "/next", Hostname: "127.0.0.1", Port: ps,
				AddressesResolved: []string{"127.0.0.1"}, AddressUsed: "127.0.0.1",
			}},
		},
		{
			name: "failed at a redirect target that does not resolve",
			id:   "127.0.0.1",
			want: []acme.ValidationRecord{{
				URL: "http://127.0.0.1:" + ps + testPath, Hostname: "127.0.0.1", Port: ps,
				AddressesResolved: []string{"127.0.0.1"}, AddressUsed: "127.0.0.1",
			}, {
				URL: "http://nx.example.test:" + ps + testPath, Hostname: "nx.example.test", Port: ps,
				Queries: []acme.DNSQuery{{Name: "nx.example.test", Type: "A"}, {Name: "nx.example.test", Type: "AAAA"}},
			}},
			problem: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ := acme.IdentifierDNS
			if net.ParseIP(tc.id) != nil {
				typ = acme.IdentifierIP
			}
			v := New(Config{Resolver: res, HTTPPort: port, Dialer: guardDialer(t, "127.0.0.1", "::1")})
			out, err := v.Validate(t.Context(), "acct", acme.ChallengeHTTP01, acme.Identifier{Type: typ, Value: tc.id}, testToken, testKeyAuth)
			if err != nil {
				t.Fatal(err)
			}
			if (out.Problem != nil) != tc.problem {
				t.Fatalf("problem = %v, want one: %v", out.Problem, tc.problem)
			}
			if !reflect.DeepEqual(tc.want, out.Records) {
				t.Errorf("records:\n got %+v\nwant %+v", out.Records, tc.want)
			}
		})
	}
}

// TestTLSALPN01Records checks tls-alpn-01's one record, for a success and
// for a connection that was refused.
func TestTLSALPN01Records(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveALPN(t, "127.0.0.1", 0, alpnCert{dnsNames: []string{"v4.example.test"}}.build(t, key), []string{acmeTLSALPN})
	ps := strconv.Itoa(srv.port)
	for _, tc := range []struct {
		name    string
		port    int
		want    acme.ValidationRecord
		problem bool
	}{
		{name: "valid", port: srv.port, want: acme.ValidationRecord{
			Hostname: "v4.example.test", Port: ps, AddressesResolved: []string{"127.0.0.1"}, AddressUsed: "127.0.0.1",
			Queries: []acme.DNSQuery{{Name: "v4.example.test", Type: "A", Answers: []string{"127.0.0.1"}}, {Name: "v4.example.test", Type: "AAAA"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := New(Config{Resolver: res, TLSALPNPort: tc.port, Dialer: guardDialer(t, "127.0.0.1")})
			out, err := v.Validate(t.Context(), "acct", acme.ChallengeTLSALPN01, acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}, testToken, testKeyAuth)
			if err != nil || (out.Problem != nil) != tc.problem {
				t.Fatalf("Validate = %+v, %v", out, err)
			}
			if !reflect.DeepEqual([]acme.ValidationRecord{tc.want}, out.Records) {
				t.Errorf("records:\n got %+v\nwant %+v", out.Records, []acme.ValidationRecord{tc.want})
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		port := closedPort(t)
		v := New(Config{Resolver: res, TLSALPNPort: port, Dialer: guardDialer(t, "127.0.0.1")})
		out, err := v.Validate(t.Context(), "acct", acme.ChallengeTLSALPN01, acme.Identifier{Type: acme.IdentifierIP, Value: "127.0.0.1"}, testToken, testKeyAuth)
		if err != nil || out.Problem == nil {
			t.Fatalf("Validate = %+v, %v; want a problem", out, err)
		}
		want := []acme.ValidationRecord{{Hostname: "127.0.0.1", Port: strconv.Itoa(port), AddressesResolved: []string{"127.0.0.1"}}}
		if !reflect.DeepEqual(want, out.Records) {
			t.Errorf("records:\n got %+v\nwant %+v", out.Records, want)
		}
	})
}

// TestDNS01Records checks that dns-01 records every question, a CNAME
// followed as its own, with the answers, failed or not.
func TestDNS01Records(t *testing.T) {
	digest := testDigest()
	zone := newTXTZone(t,
		`_acme-challenge.b.example. 60 IN CNAME b1.example.`,
		`b1.example. 60 IN CNAME b2.validation.example.`,
		fmt.Sprintf(`b2.validation.example. 60 IN TXT "stale" %q`, ""),
		fmt.Sprintf(`b2.validation.example. 60 IN TXT %q`, digest),
		`_acme-challenge.wrong.example. 60 IN TXT "abc"`,
	)
	v := New(Config{Nameservers: []string{startDNS(t, zone)}})
	for _, tc := range []struct {
		domain  string
		want    []acme.DNSQuery
		problem bool
	}{
		{domain: "b.example", want: []acme.DNSQuery{
			{Name: "_acme-challenge.b.example", Type: "CNAME", Answers: []string{"b1.example"}},
			{Name: "b1.example", Type: "CNAME", Answers: []string{"b2.validation.example"}},
			{Name: "b2.validation.example", Type: "TXT", Answers: []string{"stale", digest}},
		}},
		{domain: "wrong.example", problem: true, want: []acme.DNSQuery{{Name: "_acme-challenge.wrong.example", Type: "TXT", Answers: []string{"abc"}}}},
		{domain: "nx.example", problem: true, want: []acme.DNSQuery{{Name: "_acme-challenge.nx.example", Type: "TXT"}}},
	} {
		t.Run(tc.domain, func(t *testing.T) {
			out, err := v.Validate(t.Context(), "acct", acme.ChallengeDNS01, acme.Identifier{Type: acme.IdentifierDNS, Value: tc.domain}, testToken, testKeyAuth)
			if err != nil || (out.Problem != nil) != tc.problem {
				t.Fatalf("Validate = %+v, %v", out, err)
			}
			want := []acme.ValidationRecord{{Hostname: tc.domain, Queries: tc.want}}
			if !reflect.DeepEqual(want, out.Records) {
				t.Errorf("records:\n got %+v\nwant %+v", out.Records, want)
			}
		})
	}
}

// TestRedirectToInternalCanary: an account's server redirects validation
// to an internal page (another loopback address on the allowed port) that
// serves a secret. Whatever that page answers, the secret is in nothing
// the account gets back: neither the problem nor the records.
func TestRedirectToInternalCanary(t *testing.T) {
	if !listenable("127.0.0.3") {
		t.Skip("cannot listen on 127.0.0.3")
	}
	const secret = "CANARY-7f3a9c-internal-admin-token"
	canaries := map[string]http.Handler{
		"200 text/html": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; "+secret+"=1")
			fmt.Fprintf(w, "<html><body>admin token: %s</body></html>", secret)
		}),
		"200 starting like a key authorization": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, testKeyAuth+secret)
		}),
		"500": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, secret, http.StatusInternalServerError)
		}),
		"not HTTP": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				fmt.Fprintf(conn, "+OK %s\r\n", secret)
				conn.Close()
			}
		}),
		"oversized": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, strings.Repeat(secret, 4000))
		}),
	}
	for name, h := range canaries {
		t.Run(name, func(t *testing.T) {
			port := serveAt(t, "127.0.0.3", 0, h)
			serveAt(t, "127.0.0.1", port, redirect(func(*http.Request) string {
				return "http://127.0.0.3:" + strconv.Itoa(port) + "/admin"
			}))
			v := New(Config{Resolver: failResolver{t}, HTTPPort: port, Dialer: guardDialer(t, "127.0.0.1", "127.0.0.3")})
			id := acme.Identifier{Type: acme.IdentifierIP, Value: "127.0.0.1"}
			out, err := v.Validate(t.Context(), "acct", acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			if err != nil || out.Problem == nil {
				t.Fatalf("Validate = %+v, %v; want a problem", out, err)
			}
			shown, _ := json.Marshal(out)
			t.Logf("the account sees: %s", shown)
			if strings.Contains(string(shown), secret) || strings.Contains(out.Problem.Error(), secret) {
				t.Fatalf("the canary's secret reached the account: %s", shown)
			}
			if len(out.Records) != 2 || out.Records[1].URL != "http://127.0.0.3:"+strconv.Itoa(port)+"/admin" {
				t.Errorf("records %+v, want the redirect to the canary as the second", out.Records)
			}
		})
	}
}
