package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestNormalizeIdentifier(t *testing.T) {
	tests := []struct {
		in      Identifier
		want    string
		wantErr error
	}{
		{Identifier{"dns", "Example.COM"}, "example.com", nil},
		{Identifier{"dns", "a-b.c1.internal"}, "a-b.c1.internal", nil},
		{Identifier{"dns", "localhost"}, "localhost", nil},
		{Identifier{"dns", ""}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "example.com."}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "-a.example"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "a..example"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "a_b.example"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "*.Example.com"}, "*.example.com", nil},
		{Identifier{"dns", "*.*.example.com"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "a.*.example.com"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "*"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "*.com"}, "*.com", nil},
		{Identifier{"dns", "10.0.0.1"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", "host.123"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", strings.Repeat("a", 64) + ".example"}, "", ErrRejectedIdentifier},
		{Identifier{"dns", strings.Repeat("abcdefghi.", 26) + "com"}, "", ErrRejectedIdentifier},
		{Identifier{"ip", "127.0.0.1"}, "127.0.0.1", nil},
		{Identifier{"ip", "2001:DB8:0:0::1"}, "2001:db8::1", nil},
		{Identifier{"ip", "::ffff:10.0.0.1"}, "10.0.0.1", nil},
		{Identifier{"ip", "fe80::1%eth0"}, "", ErrRejectedIdentifier},
		{Identifier{"ip", "example.com"}, "", ErrRejectedIdentifier},
		{Identifier{"email", "a@b.c"}, "", ErrUnsupportedIdentifier},
	}
	for _, tt := range tests {
		got, p := NormalizeIdentifier(tt.in)
		if tt.wantErr != nil {
			if !errors.Is(p, tt.wantErr) || p.Identifier == nil || p.Detail == "" {
				t.Errorf("NormalizeIdentifier(%v) = %v, want %v naming the identifier", tt.in, p, tt.wantErr)
			}
			continue
		}
		if p != nil || got.Value != tt.want {
			t.Errorf("NormalizeIdentifier(%v) = %v, %v; want %q", tt.in, got, p, tt.want)
		}
	}
}

func TestCheckContacts(t *testing.T) {
	tests := []struct {
		contacts []string
		want     error
	}{
		{nil, nil},
		{[]string{"mailto:admin@example.com"}, nil},
		{[]string{"mailto:a@example.com", "mailto:b@example.org"}, nil},
		{[]string{"tel:+1555"}, ErrUnsupportedContact},
		{[]string{"admin@example.com"}, ErrUnsupportedContact},
		{[]string{"mailto:a@example.com,b@example.com"}, ErrInvalidContact},
		{[]string{"mailto:a@example.com?subject=x"}, ErrInvalidContact},
		{[]string{"mailto:not-an-address"}, ErrInvalidContact},
		{[]string{"mailto:Admin <a@example.com>"}, ErrInvalidContact},
		{[]string{"mailto:a@bad_domain"}, ErrInvalidContact},
		{make([]string, 11), ErrUnsupportedContact},
	}
	tests[len(tests)-1].want = ErrInvalidContact
	for _, tt := range tests {
		p := CheckContacts(tt.contacts)
		if (tt.want == nil) != (p == nil) || (p != nil && !errors.Is(p, tt.want)) {
			t.Errorf("CheckContacts(%q) = %v, want %v", tt.contacts, p, tt.want)
		}
	}
}

func makeCSR(t *testing.T, key crypto.Signer, cn string, dns []string, ips []net.IP) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: cn}, DNSNames: dns, IPAddresses: ips}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func TestCheckCSR(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	accountKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	accountTP, _ := Thumbprint(&jose.JSONWebKey{Key: accountKey.Public()})
	idents := []Identifier{{"dns", "a.example"}, {"dns", "b.example"}}
	tests := []struct {
		name string
		key  crypto.Signer
		cn   string
		dns  []string
		ok   bool
	}{
		{"exact names", p256, "", []string{"a.example", "b.example"}, true},
		{"CN among names", p256, "a.example", []string{"b.example"}, true},
		{"upper case", rsa2048, "", []string{"A.EXAMPLE", "b.example"}, true},
		{"missing name", p256, "", []string{"a.example"}, false},
		{"extra name", p256, "", []string{"a.example", "b.example", "c.example"}, false},
		{"CN not in order", p256, "c.example", []string{"a.example", "b.example"}, false},
		{"account key", accountKey, "", []string{"a.example", "b.example"}, false},
	}
	for _, tt := range tests {
		p := CheckCSR(makeCSR(t, tt.key, tt.cn, tt.dns, nil), idents, accountTP)
		if tt.ok != (p == nil) || (p != nil && !errors.Is(p, ErrBadCSR)) {
			t.Errorf("%s: CheckCSR = %v", tt.name, p)
		}
	}
}
