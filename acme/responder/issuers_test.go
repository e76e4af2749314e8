package responder_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/storage/embedded"
)

// TestRotatedIssuers: a responder for a rotated CA answers for each
// intermediate, signed by that intermediate, and only about its own
// certificates: a serial another intermediate issued is unknown to it,
// and records from before rotation (no issuer) are the original's.
func TestRotatedIssuers(t *testing.T) {
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	orig, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, err := orig.NewIntermediate(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	next, err := orig.WithIntermediate(certPEM, key)
	if err != nil {
		t.Fatal(err)
	}
	_, stranger := newStranger(t)

	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth, err := authority.New(authority.Config{Store: store, Signer: orig, Validator: challenges.New(challenges.Config{}), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	issue := func(l *ca.Local, recordIssuer string, revoked bool) *x509.Certificate {
		t.Helper()
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		now := time.Now()
		is, err := l.Sign(t.Context(), ca.Request{PublicKey: k.Public(), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		c := &acme.Certificate{Serial: is.Serial, AccountID: "acct", OrderID: "o", ChainPEM: is.ChainPEM, NotAfter: is.Leaf.NotAfter,
			NotBefore: is.Leaf.NotBefore, Issuer: recordIssuer, Revoked: revoked}
		if revoked {
			c.RevokedAt = now.Truncate(time.Second)
		}
		if err := store.PutCertificate(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		return is.Leaf
	}
	legacy := issue(orig, "", false)           // recorded before rotation
	fresh := issue(next, next.Name(), false)   // by the new intermediate
	revoked := issue(next, next.Name(), true)  // revoked, new intermediate
	oldNamed := issue(orig, orig.Name(), true) // the original, named
	set := ca.NewIssuerSet(orig, next, []*ca.Local{orig, next}, "")
	issuers := []responder.Issuer{}
	for _, l := range set.All {
		issuers = append(issuers, responder.Issuer{Cert: l.Intermediate(), Signer: l,
			Issued: func(c *acme.Certificate) bool { return set.Issued(l, c.Issuer) }})
	}
	r, err := responder.New(responder.Config{Issuers: func() []responder.Issuer { return issuers }, Lookup: auth, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)

	ask := func(leaf, issuer *x509.Certificate) []byte {
		t.Helper()
		req, err := ocsp.CreateRequest(leaf, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Post(srv.URL+responder.Path, "application/ocsp-request", bytes.NewReader(req))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return body
	}
	for _, tc := range []struct {
		name         string
		leaf, issuer *x509.Certificate
		want         int
	}{
		{"legacy record, original", legacy, orig.Intermediate(), ocsp.Good},
		{"named record, original", oldNamed, orig.Intermediate(), ocsp.Revoked},
		{"new intermediate", fresh, next.Intermediate(), ocsp.Good},
		{"revoked, new intermediate", revoked, next.Intermediate(), ocsp.Revoked},
		{"new intermediate's serial asked of the original", fresh, orig.Intermediate(), ocsp.Unknown},
		{"original's serial asked of the new intermediate", legacy, next.Intermediate(), ocsp.Unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The answer must verify against the issuer asked about.
			got, err := ocsp.ParseResponse(ask(tc.leaf, tc.issuer), tc.issuer)
			if err != nil {
				t.Fatalf("answer does not verify against the issuer asked about: %v", err)
			}
			if got.Status != tc.want || got.SerialNumber.Cmp(tc.leaf.SerialNumber) != 0 {
				t.Fatalf("status %d for %x, want %d", got.Status, got.SerialNumber, tc.want)
			}
		})
	}
	t.Run("another CA", func(t *testing.T) {
		if _, err := ocsp.ParseResponse(ask(legacy, stranger), stranger); err == nil || !bytes.Contains([]byte(err.Error()), []byte("unauthorized")) {
			t.Fatalf("a request naming another CA: %v, want unauthorized", err)
		}
	})
}

// newStranger is a CA certificate of no concern to the responder.
func newStranger(t *testing.T) (*ca.Local, *x509.Certificate) {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l, l.Intermediate()
}
