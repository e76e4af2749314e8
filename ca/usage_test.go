package ca_test

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

const (
	ds = x509.KeyUsageDigitalSignature
	ke = x509.KeyUsageKeyEncipherment
	ka = x509.KeyUsageKeyAgreement
)

var (
	serverAuth = x509.ExtKeyUsageServerAuth
	clientAuth = x509.ExtKeyUsageClientAuth
)

// testKeys is one key of each type Sign accepts, made once per test.
type testKeys struct{ p256, p384, rsa, ed crypto.PublicKey }

func newTestKeys(t *testing.T) testKeys {
	t.Helper()
	return testKeys{ecKey(t, elliptic.P256()), ecKey(t, elliptic.P384()), rsaKey(t), edKey(t)}
}

// verifyLeaf checks iss against the CA's root for name and EKU.
func verifyLeaf(t *testing.T, l *ca.Local, iss *ca.Issued, name string, eku x509.ExtKeyUsage) error {
	t.Helper()
	chain := parsePEMCerts(t, iss.ChainPEM)
	inters := x509.NewCertPool()
	for _, c := range chain[1:] {
		inters.AddCert(c)
	}
	_, err := iss.Leaf.Verify(x509.VerifyOptions{
		DNSName: name, Roots: rootPool(l), Intermediates: inters,
		CurrentTime: iss.Leaf.NotBefore.Add(time.Minute), KeyUsages: []x509.ExtKeyUsage{eku},
	})
	return err
}

// The asked-for key usages are fitted to the key: digitalSignature always,
// keyEncipherment only for RSA, keyAgreement only for ECDSA, Ed25519 only
// digitalSignature; none asked for is today's choice by key type.
func TestSignKeyUsage(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	k := newTestKeys(t)
	tests := []struct {
		name string
		pub  crypto.PublicKey
		ask  x509.KeyUsage
		want x509.KeyUsage
	}{
		{"ECDSA default", k.p256, 0, ds},
		{"ECDSA digitalSignature", k.p256, ds, ds},
		{"ECDSA keyEncipherment dropped (RFC 8813)", k.p256, ds | ke, ds},
		{"ECDSA keyEncipherment alone gets digitalSignature", k.p256, ke, ds},
		{"ECDSA keyAgreement", k.p256, ds | ka, ds | ka},
		{"ECDSA P-384 keyAgreement alone", k.p384, ka, ds | ka},
		{"ECDSA all three", k.p384, ds | ke | ka, ds | ka},
		{"RSA default", k.rsa, 0, ds | ke},
		{"RSA digitalSignature only", k.rsa, ds, ds},
		{"RSA keyEncipherment", k.rsa, ke, ds | ke},
		{"RSA keyAgreement dropped", k.rsa, ds | ka, ds},
		{"RSA all three", k.rsa, ds | ke | ka, ds | ke},
		{"Ed25519 default", k.ed, 0, ds},
		{"Ed25519 all three", k.ed, ds | ke | ka, ds},
		{"Ed25519 keyAgreement alone", k.ed, ka, ds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(tt.pub)
			req.KeyUsage = tt.ask
			iss, err := l.Sign(context.Background(), req)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if iss.Leaf.KeyUsage != tt.want {
				t.Errorf("KeyUsage %#x, want %#x", iss.Leaf.KeyUsage, tt.want)
			}
			if err := verifyLeaf(t, l, iss, "example.test", serverAuth); err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
}

// The leaf carries the asked-for EKUs, and a verifier holds it to them.
func TestSignExtKeyUsage(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	k := newTestKeys(t)
	both := []x509.ExtKeyUsage{serverAuth, clientAuth}
	tests := []struct {
		name string
		pub  crypto.PublicKey
		ask  []x509.ExtKeyUsage
		want []x509.ExtKeyUsage
	}{
		{"nil is serverAuth+clientAuth", k.p256, nil, both},
		{"empty is serverAuth+clientAuth", k.p256, []x509.ExtKeyUsage{}, both},
		{"serverAuth only", k.p256, []x509.ExtKeyUsage{serverAuth}, []x509.ExtKeyUsage{serverAuth}},
		{"clientAuth only", k.rsa, []x509.ExtKeyUsage{clientAuth}, []x509.ExtKeyUsage{clientAuth}},
		{"both, Ed25519", k.ed, both, both},
		{"serverAuth only, Ed25519", k.ed, []x509.ExtKeyUsage{serverAuth}, []x509.ExtKeyUsage{serverAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(tt.pub)
			req.ExtKeyUsage = tt.ask
			iss, err := l.Sign(context.Background(), req)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if !slices.Equal(iss.Leaf.ExtKeyUsage, tt.want) {
				t.Errorf("ExtKeyUsage %v, want %v", iss.Leaf.ExtKeyUsage, tt.want)
			}
			for _, eku := range both {
				err := verifyLeaf(t, l, iss, "www.example.test", eku)
				if allowed := slices.Contains(tt.want, eku); allowed != (err == nil) {
					t.Errorf("Verify for EKU %v: %v; want allowed=%v", eku, err, allowed)
				}
			}
		})
	}
}

// URI SANs are carried as given, beside the DNS names and IP addresses,
// and never back the CN.
func TestSignURIs(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	uris := []*url.URL{mustURL(t, "spiffe://example.org/ns/a"), mustURL(t, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66")}
	req := validRequest(edKey(t))
	req.URIs = uris
	req.CommonName = uris[0].String()
	iss, err := l.Sign(context.Background(), req)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	got := make([]string, len(iss.Leaf.URIs))
	for i, u := range iss.Leaf.URIs {
		got[i] = u.String()
	}
	if want := []string{uris[0].String(), uris[1].String()}; !slices.Equal(got, want) {
		t.Errorf("URIs %v, want %v", got, want)
	}
	if !slices.Equal(iss.Leaf.DNSNames, req.DNSNames) || len(iss.Leaf.IPAddresses) != len(req.IPAddresses) {
		t.Errorf("SANs DNS %v IP %v, want %v %v", iss.Leaf.DNSNames, iss.Leaf.IPAddresses, req.DNSNames, req.IPAddresses)
	}
	if cn := iss.Leaf.Subject.CommonName; cn != "" {
		t.Errorf("CommonName %q: a URI SAN backs no CN", cn)
	}
}

// A request asking for what no leaf may carry is refused, whatever the
// key type, and so is a malformed URI SAN.
func TestSignRefusesUsages(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	k := newTestKeys(t)
	tests := []struct {
		name   string
		modify func(*ca.Request)
		want   string
	}{
		{"keyCertSign", func(r *ca.Request) { r.KeyUsage = x509.KeyUsageCertSign }, "keyCertSign or cRLSign"},
		{"cRLSign", func(r *ca.Request) { r.KeyUsage = x509.KeyUsageCRLSign }, "keyCertSign or cRLSign"},
		{"digitalSignature and keyCertSign", func(r *ca.Request) { r.KeyUsage = ds | x509.KeyUsageCertSign }, "keyCertSign or cRLSign"},
		{"contentCommitment", func(r *ca.Request) { r.KeyUsage = ds | x509.KeyUsageContentCommitment }, "not one acmed issues"},
		{"dataEncipherment", func(r *ca.Request) { r.KeyUsage = x509.KeyUsageDataEncipherment }, "not one acmed issues"},
		{"decipherOnly", func(r *ca.Request) { r.KeyUsage = ka | x509.KeyUsageDecipherOnly }, "not one acmed issues"},
		{"unknown EKU", func(r *ca.Request) { r.ExtKeyUsage = []x509.ExtKeyUsage{serverAuth, 999} }, "extended key usage"},
		{"nil URI", func(r *ca.Request) { r.URIs = []*url.URL{nil} }, "URI SAN 0"},
		{"relative URI", func(r *ca.Request) { r.URIs = []*url.URL{mustURL(t, "//example.org/x")} }, "URI SAN 0"},
		{"scheme only", func(r *ca.Request) { r.URIs = []*url.URL{mustURL(t, "spiffe://example.org/a"), mustURL(t, "spiffe:")} }, "URI SAN 1"},
	}
	for _, tt := range tests {
		for kname, pub := range map[string]crypto.PublicKey{"ECDSA": k.p256, "RSA": k.rsa, "Ed25519": k.ed} {
			t.Run(tt.name+"/"+kname, func(t *testing.T) {
				req := validRequest(pub)
				tt.modify(&req)
				iss, err := l.Sign(context.Background(), req)
				if err == nil {
					t.Fatalf("Sign succeeded: serial %s, KeyUsage %#x", iss.Serial, iss.Leaf.KeyUsage)
				}
				if !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Sign: %v; want it to say %q", err, tt.want)
				}
			})
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
