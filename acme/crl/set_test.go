package crl_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/ca"
)

// TestSetRotatedIssuers: a Set publishes one CRL per issuer, each signed
// by its issuer and listing only that issuer's revoked certificates
// (records without an issuer being the original's); an issuer added to
// the set later (a rotation) gets its CRL at the next pass, and one the
// set drops is not found.
func TestSetRotatedIssuers(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "ca2")
	// A second intermediate under another root will do: the Set cares
	// about names and keys, not chains.
	if err := ca.Init(dir, ca.Config{Now: e.clk.Now}); err != nil {
		t.Fatal(err)
	}
	base2, err := ca.Load(dir, ca.Config{Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, err := base2.NewIntermediate(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	next, err := base2.WithIntermediate(certPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	notAfter := e.clk.Now().Add(30 * 24 * time.Hour)
	e.cert(t, "0a", notAfter, 1) // before rotation: no issuer, the original's
	e.certBy(t, "0b", notAfter, e.ca.Name())
	e.certBy(t, "0c", notAfter, next.Name())
	e.cert(t, "0d", notAfter, -1) // not revoked

	issued := func(l *ca.Local) func(*acme.Certificate) bool {
		return func(c *acme.Certificate) bool { return c.Issuer == l.Name() || c.Issuer == "" && l == e.ca }
	}
	var issuers atomic.Pointer[[]crl.SetIssuer]
	one := []crl.SetIssuer{{Issuer: e.ca, Issued: issued(e.ca)}}
	issuers.Store(&one)
	set, err := crl.NewSet(crl.Config{Store: e.store, BaseURL: base, Validity: validity, Refresh: refresh, Holder: "h",
		Now: e.clk.Now, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))}, func() []crl.SetIssuer { return *issuers.Load() })
	if err != nil {
		t.Fatal(err)
	}
	build := func(l *ca.Local) *x509.RevocationList {
		t.Helper()
		if _, err := set.Build(t.Context(), l.Name(), "test"); err != nil {
			t.Fatal(err)
		}
		c, err := set.CRL(t.Context(), l.Name())
		if err != nil {
			t.Fatal(err)
		}
		list, err := x509.ParseRevocationList(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := list.CheckSignatureFrom(l.Intermediate()); err != nil {
			t.Fatalf("CRL of %s: %v", l.Name(), err)
		}
		return list
	}
	serials := func(list *x509.RevocationList) []string {
		var out []string
		for _, e := range list.RevokedCertificateEntries {
			out = append(out, e.SerialNumber.Text(16))
		}
		return out
	}
	if got := serials(build(e.ca)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"a", "b"}) {
		t.Fatalf("the original's CRL lists %v, want a and b", got)
	}
	if _, err := set.CRL(t.Context(), next.Name()); !isNotFound(err) {
		t.Fatalf("CRL of an issuer not in the set yet: %v, want not found", err)
	}
	two := []crl.SetIssuer{one[0], {Issuer: next, Issued: issued(next)}}
	issuers.Store(&two)
	if got := serials(build(next)); len(got) != 1 || got[0] != "c" {
		t.Fatalf("the new issuer's CRL lists %v, want c", got)
	}
	if got := serials(build(e.ca)); !slices.Equal(slices.Sorted(slices.Values(got)), []string{"a", "b"}) {
		t.Fatalf("the original's CRL after the rotation lists %v, want a and b", got)
	}
	if set.DistributionPoint(next.Name()) != base+"/crl/"+next.Name()+".crl" {
		t.Fatalf("distribution point %s", set.DistributionPoint(next.Name()))
	}
	// Run stops with its context.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- set.Run(ctx) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	issuers.Store(&one)
	if _, err := set.CRL(t.Context(), next.Name()); !isNotFound(err) {
		t.Fatalf("CRL of an issuer the set dropped: %v, want not found", err)
	}
}

func isNotFound(err error) bool {
	var p *acme.Problem
	return errors.As(err, &p) && p.Status == 404
}

// certBy stores a certificate of issuer, revoked (reason 4).
func (e *env) certBy(t *testing.T, serial string, notAfter time.Time, issuer string) {
	t.Helper()
	c := &acme.Certificate{Serial: serial, AccountID: "acct", OrderID: "order-" + serial, Issuer: issuer,
		ChainPEM:    []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: serial + ".example"}},
		NotBefore:   notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	if err := e.store.PutCertificate(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	e.revoke(t, serial, 4)
}
