package ca_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/acmed/acmed/ca"
)

const svidID = "spiffe://example.org/ns/payments/sa/api"

// svidRequest is what the spiffe profile hands Sign: the SPIFFE ID as the
// only URI SAN, the validated DNS names, digitalSignature,
// serverAuth+clientAuth.
func svidRequest(t *testing.T, pub crypto.PublicKey, uris ...string) ca.Request {
	t.Helper()
	req := ca.Request{
		PublicKey:   pub,
		DNSNames:    []string{"api.example.org"},
		NotBefore:   epoch.Add(time.Hour),
		NotAfter:    epoch.Add(25 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{serverAuth, clientAuth},
		KeyUsage:    ds,
	}
	for _, u := range uris {
		req.URIs = append(req.URIs, mustURL(t, u))
	}
	return req
}

// svidChain is the issued chain as a SPIFFE peer presents it: leaf, then
// intermediate, in DER.
func svidChain(t *testing.T, iss *ca.Issued) [][]byte {
	t.Helper()
	var raw [][]byte
	for _, c := range parsePEMCerts(t, iss.ChainPEM) {
		raw = append(raw, c.Raw)
	}
	return raw
}

// The real SPIFFE library accepts acmed's leaf as an X509-SVID, with
// acmed's root as the trust domain's bundle, for every key type.
func TestSignX509SVID(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	k := newTestKeys(t)
	td := spiffeid.RequireTrustDomainFromString("example.org")
	bundle := x509bundle.FromX509Authorities(td, []*x509.Certificate{l.Root()})
	for name, pub := range map[string]crypto.PublicKey{"ECDSA P-256": k.p256, "ECDSA P-384": k.p384, "RSA": k.rsa, "Ed25519": k.ed} {
		t.Run(name, func(t *testing.T) {
			iss, err := l.Sign(context.Background(), svidRequest(t, pub, svidID))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			id, chains, err := x509svid.ParseAndVerify(svidChain(t, iss), bundle, x509svid.WithTime(epoch.Add(2*time.Hour)))
			if err != nil {
				t.Fatalf("ParseAndVerify: %v", err)
			}
			if id.String() != svidID || !id.MemberOf(td) {
				t.Errorf("SPIFFE ID %q, want %q in %s", id, svidID, td)
			}
			if len(chains) != 1 || len(chains[0]) != 3 || !chains[0][2].Equal(l.Root()) {
				t.Errorf("verified chains %v; want leaf, intermediate, acmed's root", chains)
			}
			leaf := iss.Leaf
			if leaf.IsCA || leaf.KeyUsage != ds || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "api.example.org" {
				t.Errorf("leaf IsCA=%v KeyUsage=%#x DNSNames=%v; want a digitalSignature leaf for api.example.org", leaf.IsCA, leaf.KeyUsage, leaf.DNSNames)
			}
		})
	}
}

// The library does real checks: it refuses what is not an X509-SVID, or
// not one of the bundle's trust domain.
func TestX509SVIDRefused(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	other, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	pub := ecKey(t, elliptic.P256())
	td := spiffeid.RequireTrustDomainFromString("example.org")
	own := x509bundle.FromX509Authorities(td, []*x509.Certificate{l.Root()})
	tests := []struct {
		name   string
		uris   []string
		bundle *x509bundle.Bundle
		want   string
	}{
		{"two URIs", []string{svidID, "spiffe://example.org/ns/payments/sa/other"}, own, "more than one URI SAN"},
		{"no URI", nil, own, "no URI SAN"},
		{"not a SPIFFE ID", []string{"https://example.org/api"}, own, "scheme"},
		{"other trust domain", []string{"spiffe://other.example/api"}, own, "no X.509 bundle"},
		{"other CA's root", []string{svidID}, x509bundle.FromX509Authorities(td, []*x509.Certificate{other.Root()}), "could not verify"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			iss, err := l.Sign(context.Background(), svidRequest(t, pub, tt.uris...))
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			id, _, err := x509svid.ParseAndVerify(svidChain(t, iss), tt.bundle, x509svid.WithTime(epoch.Add(2*time.Hour)))
			if err == nil {
				t.Fatalf("ParseAndVerify accepted it as %q", id)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseAndVerify: %v; want it to say %q", err, tt.want)
			}
		})
	}
}
