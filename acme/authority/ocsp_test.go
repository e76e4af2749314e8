package authority_test

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
)

// recordingSigner keeps the requests it signs.
type recordingSigner struct {
	*fakeSigner
	mu   sync.Mutex
	reqs []ca.Request
}

func (r *recordingSigner) Sign(ctx context.Context, req ca.Request) (*ca.Issued, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	return r.fakeSigner.Sign(ctx, req)
}

func (r *recordingSigner) last() ca.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

// TestOCSPServerInCertificates: the responder URL goes to the CA with
// every certificate when configured, and none otherwise.
func TestOCSPServerInCertificates(t *testing.T) {
	for _, urls := range [][]string{nil, {"http://ocsp.example/ocsp"}} {
		var rec *recordingSigner
		e := newEnv(t, func(c *authority.Config) {
			rec = &recordingSigner{fakeSigner: c.Signer.(*fakeSigner)}
			c.Signer, c.OCSPServer = rec, urls
		})
		e.run(t)
		e.issued(t, e.account(t), "aia.example")
		if got := rec.last().OCSPServer; !slices.Equal(got, urls) {
			t.Errorf("OCSPServer %q, want %q", got, urls)
		}
	}
}

// TestCertificateStatus: a relying party's lookup finds a certificate
// by its serial in any form openssl or a log shows, also one stored in
// the form acmed used before the canonical one, and finds nothing for a
// serial never issued or not a serial at all.
func TestCertificateStatus(t *testing.T) {
	e := newEnv(t, nil)
	e.run(t)
	owner := e.account(t)
	der, _ := e.issued(t, owner, "status.example")
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	serial := acme.SerialHex(leaf.SerialNumber)
	if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: der, Reason: 4, Account: owner}); err != nil {
		t.Fatal(err)
	}
	// A record from before the canonical form: its serial has a
	// leading zero octet, kept without the zero.
	legacy := &acme.Certificate{Serial: acme.LegacySerial("0abc"), AccountID: owner.ID, OrderID: "old",
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	if err := e.store.PutCertificate(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		ask, want string
		revoked   bool
	}{
		{serial, serial, true},
		{strings.ToUpper(serial), serial, true},
		{"00:" + serial, serial, true},
		{"0abc", "abc", false},
		{"0ABD", "", false},
		{"not a serial", "", false},
		{"0", "", false},
	} {
		c, err := e.a.CertificateStatus(t.Context(), tt.ask)
		if err != nil {
			t.Fatalf("%q: %v", tt.ask, err)
		}
		switch {
		case tt.want == "" && c != nil:
			t.Errorf("%q: found %s, want none", tt.ask, c.Serial)
		case tt.want != "" && c == nil:
			t.Errorf("%q: found none, want %s", tt.ask, tt.want)
		case c != nil && (c.Serial != tt.want || c.Revoked != tt.revoked):
			t.Errorf("%q: found %s revoked %v, want %s revoked %v", tt.ask, c.Serial, c.Revoked, tt.want, tt.revoked)
		}
	}
}
