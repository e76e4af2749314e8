package ca_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/crosstest"
)

// BenchmarkAlternateChains is the work a certificate download adds when
// an alternate chain is configured: parse the stored leaf, find its
// issuer's bundles, concatenate.
func BenchmarkAlternateChains(b *testing.B) {
	l, _ := newCA(b, ca.Config{})
	x := crosstest.NewRoot(b, "Cross Root X1")
	bundle := crosstest.WriteBundle(b, b.TempDir(), "x.pem", x.CrossSign(b, l.Intermediate()), x.Cert)
	alts, err := ca.LoadAlternates([]string{bundle}, []*x509.Certificate{l.Intermediate()}, ca.Config{})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	issued, err := l.Sign(context.Background(), ca.Request{PublicKey: ecKey(b, elliptic.P256()), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(alts.Chains(issued.ChainPEM)) != 1 {
			b.Fatal("no alternate")
		}
	}
}
