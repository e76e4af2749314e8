package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rotated makes a second intermediate under l's root, with root.key from
// dir.
func rotated(t *testing.T, l *ca.Local, dir string) *ca.Local {
	t.Helper()
	key := newKey(t)
	certPEM, err := l.NewIntermediate(dir, key)
	if err != nil {
		t.Fatalf("NewIntermediate: %v", err)
	}
	next, err := l.WithIntermediate(certPEM, key)
	if err != nil {
		t.Fatalf("WithIntermediate: %v", err)
	}
	if err := next.CheckNew(); err != nil {
		t.Fatalf("CheckNew: %v", err)
	}
	return next
}

// TestNewIntermediate: a rotation's intermediate is a CA under the same
// root with a key (and so a CRL name) of its own, signs leaves that
// verify to the root, and ends no later than the root.
func TestNewIntermediate(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	next := rotated(t, l, dir)
	if next.Name() == l.Name() {
		t.Fatalf("the new intermediate has the old one's name %s", l.Name())
	}
	if next.Intermediate().NotAfter.After(l.Root().NotAfter) {
		t.Fatalf("new intermediate ends %s, after the root %s", next.Intermediate().NotAfter, l.Root().NotAfter)
	}
	if !next.Intermediate().MaxPathLenZero {
		t.Fatal("the new intermediate may sign CAs")
	}
	now := time.Now()
	issued, err := next.Sign(t.Context(), ca.Request{PublicKey: newKey(t).Public(), DNSNames: []string{"a.example"},
		NotBefore: now, NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if issued.Issuer != next.Name() {
		t.Fatalf("Issued.Issuer = %q, want %q", issued.Issuer, next.Name())
	}
	chain := parsePEMCerts(t, issued.ChainPEM)
	inter := x509.NewCertPool()
	inter.AddCert(chain[1])
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: rootPool(l), Intermediates: inter}); err != nil {
		t.Fatalf("leaf of the new intermediate: %v", err)
	}
	if !chain[1].Equal(next.Intermediate()) {
		t.Fatal("the chain does not carry the new intermediate")
	}
}

// TestNewIntermediateBadInput: no root key (offline root), a root key
// that is not the root's, and installs that do not fit are refused.
func TestNewIntermediateBadInput(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	other, otherDir := newCA(t, ca.Config{})

	t.Run("no root key", func(t *testing.T) {
		d := t.TempDir()
		_, err := l.NewIntermediate(d, newKey(t))
		if !errors.Is(err, ca.ErrNoRootKey) {
			t.Fatalf("NewIntermediate without root.key: %v, want ErrNoRootKey", err)
		}
	})
	t.Run("another root's key", func(t *testing.T) {
		_, err := l.NewIntermediate(otherDir, newKey(t))
		if err == nil || !strings.Contains(err.Error(), "does not match") {
			t.Fatalf("NewIntermediate with another root's key: %v", err)
		}
	})
	key := newKey(t)
	certPEM, err := l.NewIntermediate(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"key does not match", func() error { _, err := l.WithIntermediate(certPEM, newKey(t)); return err }, "does not match"},
		{"another root", func() error { _, err := other.WithIntermediate(certPEM, key); return err }, "not signed by the root"},
		{"not PEM", func() error { _, err := l.WithIntermediate([]byte("junk"), key); return err }, "not PEM"},
		{"a leaf", func() error {
			now := time.Now()
			issued, err := l.Sign(t.Context(), ca.Request{PublicKey: key.Public(), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
			if err != nil {
				return err
			}
			_, err = l.WithIntermediate(issued.ChainPEM, key)
			return err
		}, "is not signed by the root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestKeyWrap: a wrapped key opens with the same KEK and issuer name
// only, and the KEK follows the key, not its PEM spelling.
func TestKeyWrap(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	_, otherDir := newCA(t, ca.Config{})
	kek, err := ca.KEK(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ca.KEK(dir)
	if err != nil || string(again) != string(kek) {
		t.Fatalf("KEK is not stable: %v", err)
	}
	otherKEK, err := ca.KEK(otherDir)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	wrapped, err := ca.WrapKey(kek, "0011223344556677", key)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	if strings.Contains(string(wrapped), string(der[len(der)-32:])) {
		t.Fatal("the wrapped key holds the key's bytes in clear")
	}
	got, err := ca.UnwrapKey(kek, "0011223344556677", wrapped)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Equal(got) {
		t.Fatal("unwrapped another key")
	}
	for _, tc := range []struct {
		name    string
		kek     []byte
		issuer  string
		wrapped []byte
	}{
		{"another issuer", kek, "8899aabbccddeeff", wrapped},
		{"another CA", otherKEK, "0011223344556677", wrapped},
		{"truncated", kek, "0011223344556677", wrapped[:10]},
		{"flipped bit", kek, "0011223344556677", append(append([]byte{}, wrapped[:len(wrapped)-1]...), wrapped[len(wrapped)-1]^1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.UnwrapKey(tc.kek, tc.issuer, tc.wrapped); err == nil {
				t.Fatal("opened")
			}
		})
	}
	if _, err := ca.KEK(t.TempDir()); err == nil {
		t.Fatal("KEK of a directory without intermediate.key")
	}
}

// TestRotatingSwap: Sign follows the set swapped in, and names the
// active issuer's CRL.
func TestRotatingSwap(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	next := rotated(t, l, dir)
	base := "http://crl.example"
	r := ca.NewRotating(ca.NewIssuerSet(l, l, []*ca.Local{l}, base))
	sign := func() *ca.Issued {
		t.Helper()
		now := time.Now()
		issued, err := r.Sign(context.Background(), ca.Request{PublicKey: newKey(t).Public(), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		return issued
	}
	for _, want := range []*ca.Local{l, next} {
		if want == next {
			r.Swap(ca.NewIssuerSet(l, next, []*ca.Local{l, next}, base))
		}
		issued := sign()
		wantName := want.Name()
		if want == l {
			wantName = "" // the original: records stay as before rotation
		}
		if issued.Issuer != wantName || !r.Intermediate().Equal(want.Intermediate()) || issued.Leaf.CheckSignatureFrom(want.Intermediate()) != nil {
			t.Fatalf("signed by %q, want %q", issued.Issuer, wantName)
		}
		if got, wantDP := issued.Leaf.CRLDistributionPoints, ca.CRLURL(base, want.Name()); len(got) != 1 || got[0] != wantDP {
			t.Fatalf("CRL distribution points %v, want %s", got, wantDP)
		}
	}
	s := r.Set()
	if !s.Issued(l, "") || s.Issued(next, "") || !s.Issued(next, next.Name()) || s.Issued(l, next.Name()) {
		t.Fatal("IssuerSet.Issued does not tell the issuers' certificates apart")
	}
	if s.Get(next.Name()) != next || s.Get("nope") != nil {
		t.Fatal("IssuerSet.Get")
	}
}

// BenchmarkSignRotating compares signing through Rotating (what serve
// signs with, setting the CRL distribution point) with signing by the
// Local itself given the same distribution point (what serve did before
// rotation): the difference is the hot path's cost of rotation.
func BenchmarkSignRotating(b *testing.B) {
	l, _ := newCA(b, ca.Config{Now: fixedNow(epoch)})
	const base = "http://crl.example"
	r := ca.NewRotating(ca.NewIssuerSet(l, l, []*ca.Local{l}, base))
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct {
		name string
		sign func(context.Context, ca.Request) (*ca.Issued, error)
	}{{"local", l.Sign}, {"rotating", r.Sign}} {
		b.Run(bc.name, func(b *testing.B) {
			req := validRequest(k.Public())
			req.CRLDistributionPoints = []string{ca.CRLURL(base, l.Name())}
			for b.Loop() {
				if _, err := bc.sign(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLoadAllowExpired: a rotated CA's first intermediate still loads
// after it expires when the caller says it checks the active one.
func TestLoadAllowExpired(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	later := fixedNow(l.Intermediate().NotAfter.Add(time.Hour))
	if _, err := ca.Load(dir, ca.Config{Now: later}); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("Load of an expired intermediate: %v", err)
	}
	if _, err := ca.Load(dir, ca.Config{Now: later, AllowExpired: true}); err != nil {
		t.Fatalf("Load with AllowExpired: %v", err)
	}
}
