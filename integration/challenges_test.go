package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// responders are the real challenge peers of one test: DNS, and http-01 and
// tls-alpn-01 on 127.0.0.1 and, where the machine has it, ::1.
type responders struct {
	dns     *challengetest.DNS
	http01  []*challengetest.HTTP01
	tlsalpn []*challengetest.TLSALPN01
	hasIPv6 bool
}

func startResponders(t *testing.T) *responders {
	t.Helper()
	r := &responders{dns: challengetest.StartDNS(t)}
	h := challengetest.StartHTTP01(t)
	a := challengetest.StartTLSALPN01(t)
	r.http01 = append(r.http01, h)
	r.tlsalpn = append(r.tlsalpn, a)
	// The same ports on ::1, for IPv6 identifiers.
	if h6, err := challengetest.ListenHTTP01(net.JoinHostPort("::1", strconv.Itoa(h.Port))); err == nil {
		t.Cleanup(func() { h6.Close() })
		if a6, err := challengetest.ListenTLSALPN01(net.JoinHostPort("::1", strconv.Itoa(a.Port))); err == nil {
			t.Cleanup(func() { a6.Close() })
			r.http01, r.tlsalpn, r.hasIPv6 = append(r.http01, h6), append(r.tlsalpn, a6), true
		}
	}
	return r
}

// answer makes the responders satisfy chal for identifier id.
func (r *responders) answer(t *testing.T, c *acme.Client, z *acme.Authorization, chal *acme.Challenge) {
	t.Helper()
	keyAuth, err := c.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		t.Fatal(err)
	}
	switch chal.Type {
	case "http-01":
		for _, h := range r.http01 {
			h.Set(chal.Token, keyAuth)
		}
	case "tls-alpn-01":
		for _, a := range r.tlsalpn {
			if err := a.Set(z.Identifier.Value, keyAuth); err != nil {
				t.Fatal(err)
			}
		}
	case "dns-01":
		rec, err := c.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		r.dns.AddTXT("_acme-challenge."+z.Identifier.Value, rec)
	}
}

// TestChallengeTypes issues through each challenge type and identifier
// kind with golang.org/x/crypto/acme against a real acmed process.
func TestChallengeTypes(t *testing.T) {
	r := startResponders(t)
	s := startAcmed(t, t.TempDir(), "--resolver", r.dns.Addr,
		"--http01-port", strconv.Itoa(r.http01[0].Port), "--tlsalpn01-port", strconv.Itoa(r.tlsalpn[0].Port),
		"--authz-reuse=false")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		ids   []acme.AuthzID
		typ   string
		needs bool // IPv6 on loopback
	}{
		{"http-01", []acme.AuthzID{{Type: "dns", Value: "http.chal.example"}}, "http-01", false},
		{"dns-01", []acme.AuthzID{{Type: "dns", Value: "dns.chal.example"}}, "dns-01", false},
		{"tls-alpn-01", []acme.AuthzID{{Type: "dns", Value: "alpn.chal.example"}}, "tls-alpn-01", false},
		{"wildcard and base", []acme.AuthzID{{Type: "dns", Value: "*.wild.chal.example"}, {Type: "dns", Value: "wild.chal.example"}}, "dns-01", false},
		{"IPv4 http-01", []acme.AuthzID{{Type: "ip", Value: "127.0.0.1"}}, "http-01", false},
		{"IPv4 tls-alpn-01", []acme.AuthzID{{Type: "ip", Value: "127.0.0.1"}}, "tls-alpn-01", false},
		{"IPv6 http-01", []acme.AuthzID{{Type: "ip", Value: "::1"}}, "http-01", true},
		{"IPv6 tls-alpn-01", []acme.AuthzID{{Type: "ip", Value: "::1"}}, "tls-alpn-01", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needs && !r.hasIPv6 {
				t.Skip("no ::1 on this machine")
			}
			o, err := c.AuthorizeOrder(ctx, tt.ids)
			if err != nil {
				t.Fatalf("new order: %v", err)
			}
			authorize(t, ctx, c, o, tt.typ, func(z *acme.Authorization, chal *acme.Challenge) {
				if z.Wildcard && len(z.Challenges) != 1 {
					t.Fatalf("wildcard authorization offers %d challenges, want dns-01 only", len(z.Challenges))
				}
				r.answer(t, c, z, chal)
			})
			tmpl := &x509.CertificateRequest{}
			var names []string
			for _, id := range tt.ids {
				names = append(names, id.Value)
				if id.Type == "ip" {
					tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(id.Value))
				} else {
					tmpl.DNSNames = append(tmpl.DNSNames, id.Value)
				}
			}
			csr, err := x509.CreateCertificateRequest(rand.Reader, tmpl, newKey(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.WaitOrder(ctx, o.URI); err != nil {
				t.Fatal(err)
			}
			der, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
			if err != nil {
				t.Fatalf("finalize: %v", err)
			}
			for _, n := range names {
				verifyName := n
				if n[0] == '*' {
					verifyName = "anything" + n[1:]
				}
				if _, err := verifyLeaf(s, der, verifyName); err != nil {
					t.Fatal(fmt.Errorf("%s: %w", n, err))
				}
			}
		})
	}
}
