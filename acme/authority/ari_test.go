package authority_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// certIDOf is the ARI certID a client computes for a leaf (DER).
func certIDOf(t *testing.T, der []byte) (string, *x509.Certificate) {
	t.Helper()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return acme.CertID(leaf.AuthorityKeyId, acme.SerialHex(leaf.SerialNumber)), leaf
}

// wantStatus fails unless err is a problem of type want with HTTP status.
func wantStatus(t *testing.T, what string, err error, want *acme.Problem, status int) {
	t.Helper()
	wantProblem(t, what, err, want)
	var p *acme.Problem
	if want != nil && (!errors.As(err, &p) || p.Status != status) {
		t.Fatalf("%s: %v, want status %d", what, err, status)
	}
}

// otherAKI is a key identifier no certificate of the test CA carries.
var otherAKI = bytes.Repeat([]byte{7}, 20)

func TestRenewalInfo(t *testing.T) {
	c := newClock()
	e := newEnv(t, func(cfg *authority.Config) { cfg.Now = c.Now })
	acct := e.account(t)
	aki := e.sig.issuer.SubjectKeyId
	// A certificate stored before the canonical form, under a serial
	// with a leading zero nibble: it is found by either form.
	legacy := &acme.Certificate{Serial: "abcde", AccountID: acct.ID, Identifiers: dnsIDs("old.example"),
		NotBefore: c.Now().Add(-time.Hour), NotAfter: c.Now().Add(23 * time.Hour)}
	if err := e.store.PutCertificate(t.Context(), legacy); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// prepare returns the certID to ask about and the certificate as
		// the answer should see it (nil: a refusal).
		prepare func(t *testing.T) (string, *acme.Certificate)
		want    *acme.Problem
		status  int
		// retryAfter is the Retry-After wanted; 0: a fiftieth of the
		// lifetime, as it is for most.
		retryAfter time.Duration
	}{
		{"issued", func(t *testing.T) (string, *acme.Certificate) {
			der, _ := e.issued(t, acct, "a.example")
			id, leaf := certIDOf(t, der)
			return id, &acme.Certificate{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
		}, nil, 0, 0},
		{"revoked: renew now", func(t *testing.T) (string, *acme.Certificate) {
			der, _ := e.issued(t, acct, "a.example")
			if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: der, Account: acct, Reason: 4}); err != nil {
				t.Fatal(err)
			}
			id, leaf := certIDOf(t, der)
			return id, &acme.Certificate{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Revoked: true}
		}, nil, 0, time.Minute},
		{"in a campaign", func(t *testing.T) (string, *acme.Certificate) {
			der, _ := e.issued(t, acct, "a.example")
			id, leaf := certIDOf(t, der)
			start, end := c.Now().Add(time.Second), c.Now().Add(time.Minute)
			if _, err := e.store.UpdateCertificate(t.Context(), acme.SerialHex(leaf.SerialNumber), func(c *acme.Certificate) error {
				c.RenewAfter, c.RenewBefore, c.CampaignID = start, end, "rotate-1"
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			return id, &acme.Certificate{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, RenewAfter: start, RenewBefore: end}
		}, nil, 0, time.Minute},
		{"stored in the legacy form", func(*testing.T) (string, *acme.Certificate) {
			return acme.CertID(aki, "0abcde"), legacy
		}, nil, 0, 24 * time.Hour / 50},
		{"unknown serial", func(*testing.T) (string, *acme.Certificate) {
			return acme.CertID(aki, "0badc0de"), nil
		}, acme.ErrMalformed, http.StatusNotFound, 0},
		{"another issuer's", func(t *testing.T) (string, *acme.Certificate) {
			der, _ := e.issued(t, acct, "a.example")
			_, leaf := certIDOf(t, der)
			return acme.CertID(otherAKI, acme.SerialHex(leaf.SerialNumber)), nil
		}, acme.ErrMalformed, http.StatusNotFound, 0},
		{"malformed", func(*testing.T) (string, *acme.Certificate) { return "not-a-cert-id", nil }, acme.ErrMalformed, http.StatusBadRequest, 0},
		{"serial not base64url", func(*testing.T) (string, *acme.Certificate) {
			return strings.Split(acme.CertID(aki, "01"), ".")[0] + ".!!", nil
		}, acme.ErrMalformed, http.StatusBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, cert := tt.prepare(t)
			info, err := e.a.RenewalInfo(t.Context(), id)
			wantStatus(t, "RenewalInfo", err, tt.want, tt.status)
			if err != nil {
				return
			}
			start, end := cert.SuggestedWindow(c.Now())
			if tt.retryAfter == 0 {
				tt.retryAfter = cert.NotAfter.Sub(cert.NotBefore) / 50
			}
			if !info.Start.Equal(start) || !info.End.Equal(end) || info.RetryAfter != tt.retryAfter {
				t.Fatalf("window %s .. %s, retry after %v; want %s .. %s, %v", info.Start, info.End, info.RetryAfter, start, end, tt.retryAfter)
			}
			if cert.Revoked && info.End.After(c.Now()) {
				t.Fatalf("revoked: window ends %s, after now %s", info.End, c.Now())
			}
		})
	}
}

// A campaign's explanation URL reaches the client with its window.
func TestRenewalInfoExplanationURL(t *testing.T) {
	e := newEnv(t, nil)
	campaigns, ok := any(e.store).(storage.Campaigns)
	if !ok {
		t.Skip("the embedded store keeps no campaigns yet (storage.Campaigns)")
	}
	acct := e.account(t)
	der, _ := e.issued(t, acct, "a.example")
	id, leaf := certIDOf(t, der)
	now := time.Now()
	camp := &acme.Campaign{ID: "rotate-1", CreatedAt: now, CreatedBy: "test", ExplanationURL: "https://ops.example/incident/42",
		WindowStart: leaf.NotBefore.Add(time.Second), WindowEnd: now.Add(time.Minute)}
	n, err := campaigns.CreateCampaign(t.Context(), camp, storage.CertFilter{Now: now, Serials: []string{acme.SerialHex(leaf.SerialNumber)}})
	if err != nil || n != 1 {
		t.Fatalf("CreateCampaign: %d, %v", n, err)
	}
	info, err := e.a.RenewalInfo(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if info.ExplanationURL != camp.ExplanationURL || !info.End.Equal(camp.WindowEnd.Truncate(time.Second)) || info.RetryAfter != time.Minute {
		t.Fatalf("renewal info %+v, want the campaign's window and %s", info, camp.ExplanationURL)
	}
}

// bindEAB binds acct to a new EAB key named name, as new-account would.
func (e *env) bindEAB(t *testing.T, acct *acme.Account, name string) *acme.Account {
	t.Helper()
	k := &acme.EABKey{KID: "kid-" + name, Name: name, HMAC: bytes.Repeat([]byte{1}, 32), CreatedAt: time.Now(), Accounts: []string{acct.ID}}
	if err := e.store.CreateEABKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	bound, err := e.store.UpdateAccount(t.Context(), acct.ID, func(a *acme.Account) error {
		a.EABKID = k.KID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return bound
}

func TestNewOrderReplaces(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		// replaces is the certID given the old certificate's (DER).
		replaces func(t *testing.T, e *env, old []byte) string
		other    bool // ordered by another account
		replaced bool // the old certificate was replaced already
		want     *acme.Problem
		status   int
	}{
		{"the same names", []string{"a.example", "b.example"}, nil, false, false, nil, 0},
		{"one name in common", []string{"b.example", "c.example"}, nil, false, false, nil, 0},
		{"no name in common", []string{"c.example"}, nil, false, false, acme.ErrMalformed, http.StatusBadRequest},
		{"another account's certificate", []string{"a.example"}, nil, true, false, acme.ErrUnauthorized, http.StatusForbidden},
		{"replaced already", []string{"a.example"}, nil, false, true, acme.ErrAlreadyReplaced, http.StatusConflict},
		{"an unknown serial", []string{"a.example"}, func(_ *testing.T, e *env, _ []byte) string {
			return acme.CertID(e.sig.issuer.SubjectKeyId, "0badc0de")
		}, false, false, acme.ErrMalformed, http.StatusNotFound},
		{"another issuer's certificate", []string{"a.example"}, func(t *testing.T, _ *env, old []byte) string {
			_, leaf := certIDOf(t, old)
			return acme.CertID(otherAKI, acme.SerialHex(leaf.SerialNumber))
		}, false, false, acme.ErrMalformed, http.StatusNotFound},
		{"a malformed certID", []string{"a.example"}, func(*testing.T, *env, []byte) string { return "AQID" }, false, false, acme.ErrMalformed, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			acct := e.bindEAB(t, e.account(t), "team-a")
			old, _ := e.issued(t, acct, "a.example", "b.example")
			id, leaf := certIDOf(t, old)
			if tt.replaces != nil {
				id = tt.replaces(t, e, old)
			}
			serial := acme.SerialHex(leaf.SerialNumber)
			if tt.replaced {
				if _, err := e.store.UpdateCertificate(t.Context(), serial, func(c *acme.Certificate) error {
					c.ReplacedBy = "0a0b"
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			by := acct
			if tt.other {
				by = e.account(t)
			}
			o, err := e.a.NewOrder(t.Context(), by, authority.NewOrderRequest{Identifiers: dnsIDs(tt.names...), Replaces: id})
			wantStatus(t, "NewOrder", err, tt.want, tt.status)
			if err != nil {
				return
			}
			if o.Replaces != serial {
				t.Fatalf("order replaces %q, want %q", o.Replaces, serial)
			}
			// Issued, the certificate carries what the store needs to
			// mark the old one replaced, and its EAB key's name.
			for _, az := range o.Authzs {
				if az.Status != acme.StatusValid {
					e.respond(t, acct, az, acme.ChallengeHTTP01)
					e.waitAuthz(t, acct, az.ID, acme.StatusValid)
				}
			}
			got, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csrFor(t, tt.names...))
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != acme.StatusValid {
				got = e.waitOrder(t, acct, o.ID)
			}
			if got.EABKeyName != "team-a" {
				t.Fatalf("order's EAB key name %q, want team-a", got.EABKeyName)
			}
			cert, err := e.store.Certificate(t.Context(), got.CertSerial)
			if err != nil {
				t.Fatal(err)
			}
			if cert.Replaces != serial || cert.EABKeyName != "team-a" {
				t.Fatalf("certificate replaces %q, EAB key %q; want %q, team-a", cert.Replaces, cert.EABKeyName, serial)
			}
			ev := e.logs.events(t, "certificate.issue")
			if len(ev) != 2 || ev[1]["replaces"] != serial {
				t.Fatalf("certificate.issue audit events %v, want the second to name replaces=%s", ev, serial)
			}
		})
	}
}

// Once the store records replacements (storage.Inventory), a certificate
// replaced through replaces cannot be replaced again: lego and Caddy then
// order again without replaces.
func TestReplacedOnlyOnce(t *testing.T) {
	e := newEnv(t, nil)
	if _, ok := any(e.store).(storage.Inventory); !ok {
		t.Skip("the embedded store records no replacements yet (storage.Inventory)")
	}
	acct := e.account(t)
	old, _ := e.issued(t, acct, "a.example")
	id, leaf := certIDOf(t, old)
	o, err := e.a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs("a.example"), Replaces: id})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csrFor(t, "a.example"))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusValid {
		got = e.waitOrder(t, acct, o.ID)
	}
	stored, err := e.store.Certificate(t.Context(), acme.SerialHex(leaf.SerialNumber))
	if err != nil || stored.ReplacedBy != got.CertSerial {
		t.Fatalf("old certificate replaced by %q (%v), want %q", stored.ReplacedBy, err, got.CertSerial)
	}
	_, err = e.a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs("a.example"), Replaces: id})
	wantStatus(t, "second NewOrder replacing it", err, acme.ErrAlreadyReplaced, http.StatusConflict)
}

// signSerial has the fake CA sign a leaf for a.example with serial.
func signSerial(t *testing.T, s *fakeSigner, serial *big.Int) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: serial, DNSNames: []string{"a.example"}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.issuer, key.Public(), s.key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// Certificates stored before the canonical serial form (hex without
// leading zeros) are found by every form of their serial, and revoked.
func TestLegacySerialLookups(t *testing.T) {
	e := newEnv(t, nil)
	acct := e.account(t)
	serial, _ := new(big.Int).SetString("0f1e2d3c4b5a6978", 16)
	der, key := signSerial(t, e.sig, serial)
	legacy := serial.Text(16) // how acmed stored it: "f1e2d3c4b5a6978"
	if err := e.store.PutCertificate(t.Context(), &acme.Certificate{Serial: legacy, AccountID: acct.ID,
		ChainPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), Identifiers: dnsIDs("a.example"),
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"0f1e2d3c4b5a6978", legacy, "0F1E2D3C4B5A6978", "0f:1e:2d:3c:4b:5a:69:78"} {
		cert, err := e.a.Certificate(t.Context(), authority.CallerOf(acct), form)
		if err != nil || cert.Serial != legacy {
			t.Fatalf("Certificate(%q) = %v, %v", form, cert, err)
		}
	}
	for _, form := range []string{"", "xyz", "00"} {
		_, err := e.a.Certificate(t.Context(), authority.CallerOf(acct), form)
		wantStatus(t, "Certificate("+form+")", err, acme.ErrMalformed, http.StatusNotFound)
	}
	if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: der, Key: &jose.JSONWebKey{Key: key.Public()}}); err != nil {
		t.Fatal(err)
	}
	stored, err := e.store.Certificate(t.Context(), legacy)
	if err != nil || !stored.Revoked {
		t.Fatalf("legacy certificate after revocation: %+v, %v", stored, err)
	}
	ev := e.logs.events(t, "certificate.revoke")
	if len(ev) != 1 || ev[0]["serial"] != "0f1e2d3c4b5a6978" {
		t.Fatalf("revocation audit %v, want the canonical serial", ev)
	}
}
