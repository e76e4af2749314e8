// Package crosstest gives a test a second root that cross-signs acmed's
// intermediate, as an organisation's other root (or a public one) would:
// the alternate chains of --alternate-chain (ca.LoadAlternates).
package crosstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Root is a self-signed root CA with its key.
type Root struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// NewRoot makes a root named cn, valid from an hour ago for a year.
func NewRoot(tb testing.TB, cn string) *Root {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(tb),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"crosstest"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	r := &Root{Key: key}
	r.Cert = r.Sign(tb, tmpl, key.Public())
	if r.Cert.CheckSignatureFrom(r.Cert) != nil {
		tb.Fatal("crosstest: root does not verify itself")
	}
	return r
}

// Template is issuer's cross-signed version, to be signed by a root:
// the same subject (byte for byte), key identifier, usages, path length
// and validity, with a serial of its own. A test may change it first.
func Template(tb testing.TB, issuer *x509.Certificate) *x509.Certificate {
	tb.Helper()
	return &x509.Certificate{
		SerialNumber:          serial(tb),
		RawSubject:            issuer.RawSubject,
		SubjectKeyId:          issuer.SubjectKeyId,
		NotBefore:             issuer.NotBefore,
		NotAfter:              issuer.NotAfter,
		KeyUsage:              issuer.KeyUsage,
		ExtKeyUsage:           issuer.ExtKeyUsage,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            issuer.MaxPathLen,
		MaxPathLenZero:        issuer.MaxPathLenZero,
	}
}

// Sign signs tmpl for pub with the root's key. A template whose NotAfter
// is beyond the root's is cut to it, as a CA would.
func (r *Root) Sign(tb testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	tb.Helper()
	parent := tmpl
	if r.Cert != nil {
		parent = r.Cert
		if tmpl.NotAfter.After(r.Cert.NotAfter) {
			tmpl.NotAfter = r.Cert.NotAfter
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, r.Key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// CrossSign is issuer cross-signed by the root.
func (r *Root) CrossSign(tb testing.TB, issuer *x509.Certificate) *x509.Certificate {
	tb.Helper()
	return r.Sign(tb, Template(tb, issuer), issuer.PublicKey)
}

// WriteBundle writes certs, PEM, in order to a new file in dir and
// returns its path.
func WriteBundle(tb testing.TB, dir, name string, certs ...*x509.Certificate) string {
	tb.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, PEM(c)...)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// PEM is c's PEM encoding.
func PEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// ReadCert reads the first certificate of a PEM file (acmed's
// intermediate.pem, say).
func ReadCert(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		tb.Fatalf("crosstest: %s holds no CERTIFICATE PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func serial(tb testing.TB) *big.Int {
	tb.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}
