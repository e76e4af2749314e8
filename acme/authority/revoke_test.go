package authority_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// prove creates an order for names and proves each authorization through
// the fake validator, by its first challenge (dns-01 for a wildcard).
func (e *env) prove(t *testing.T, acct *acme.Account, names ...string) *authority.Order {
	t.Helper()
	e.val.set(0, acme.Validation{})
	o := e.order(t, acct, names...)
	for _, az := range o.Authzs {
		e.respond(t, acct, az, az.Challenges[0].Type)
		e.waitAuthz(t, acct, az.ID, acme.StatusValid)
	}
	return o
}

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrWith(t *testing.T, key *ecdsa.PrivateKey, names ...string) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// issueWith issues acct a certificate for names under key and returns
// its leaf.
func (e *env) issueWith(t *testing.T, acct *acme.Account, key *ecdsa.PrivateKey, names ...string) *x509.Certificate {
	t.Helper()
	o := e.prove(t, acct, names...)
	got, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csrWith(t, key, names...))
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusValid {
		got = e.waitOrder(t, acct, o.ID)
	}
	cert, err := e.a.Certificate(t.Context(), authority.CallerOf(acct), got.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	return leafOf(t, cert.ChainPEM)
}

// revoked reads back the stored certificate of leaf.
func (e *env) revoked(t *testing.T, leaf *x509.Certificate) *acme.Certificate {
	t.Helper()
	c, err := e.store.Certificate(t.Context(), acme.SerialHex(leaf.SerialNumber))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRevoke: each way to revoke (§7.6), each reason RFC 5280 allows an
// end-entity certificate and each it does not, and each refusal with the
// problem and a detail that says what is missing.
func TestRevoke(t *testing.T) {
	e := newEnv(t, nil)
	owner, stranger, holder, partial, baseOnly := e.account(t), e.account(t), e.account(t), e.account(t), e.account(t)
	names := []string{"a.example", "*.w.example"}
	e.prove(t, holder, names...)
	e.prove(t, partial, "a.example")
	e.prove(t, baseOnly, "a.example", "w.example") // not the wildcard's authorization
	foreign := newFakeSigner(t)                    // another CA

	type who int
	const (
		byOwner who = iota
		byCertKey
		byOtherKey
		byHolder
		byPartial
		byBaseOnly
		byStranger
	)
	tests := []struct {
		name   string
		by     who
		reason int
		cert   string // "" issued here; "junk"; "foreign"
		want   *acme.Problem
		detail string // in the problem's detail
		// requester: the audit record's requester on success
		requester string
	}{
		{name: "ordering account, unspecified", by: byOwner, reason: 0, requester: "account"},
		{name: "ordering account, keyCompromise", by: byOwner, reason: 1, requester: "account"},
		{name: "ordering account, affiliationChanged", by: byOwner, reason: 3, requester: "account"},
		{name: "ordering account, superseded", by: byOwner, reason: 4, requester: "account"},
		{name: "ordering account, cessationOfOperation", by: byOwner, reason: 5, requester: "account"},
		{name: "ordering account, privilegeWithdrawn", by: byOwner, reason: 9, requester: "account"},
		{name: "certificate key, unspecified", by: byCertKey, reason: 0, requester: "key"},
		{name: "certificate key, keyCompromise", by: byCertKey, reason: 1, requester: "key"},
		{name: "authorization holder, superseded", by: byHolder, reason: 4, requester: "authorizations"},
		{name: "authorization holder, cessationOfOperation", by: byHolder, reason: 5, requester: "authorizations"},
		{name: "authorization holder, keyCompromise", by: byHolder, reason: 1, want: acme.ErrBadRevocationReason,
			detail: "allowed for an account holding authorizations: 0 (unspecified), 3 (affiliationChanged), 4 (superseded), 5 (cessationOfOperation), 9 (privilegeWithdrawn)"},
		{name: "cACompromise", by: byOwner, reason: 2, want: acme.ErrBadRevocationReason, detail: "allowed: 0 (unspecified), 1 (keyCompromise), 3"},
		{name: "certificateHold", by: byOwner, reason: 6, want: acme.ErrBadRevocationReason, detail: "reason code 6"},
		{name: "unused code 7", by: byOwner, reason: 7, want: acme.ErrBadRevocationReason, detail: "reason code 7"},
		{name: "removeFromCRL", by: byOwner, reason: 8, want: acme.ErrBadRevocationReason, detail: "reason code 8"},
		{name: "aACompromise", by: byCertKey, reason: 10, want: acme.ErrBadRevocationReason, detail: "reason code 10"},
		{name: "negative code", by: byOwner, reason: -1, want: acme.ErrBadRevocationReason, detail: "reason code -1"},
		{name: "stranger", by: byStranger, want: acme.ErrUnauthorized, detail: "no valid authorization for a.example, *.w.example (a wildcard authorization for w.example)"},
		{name: "authorizations for some identifiers", by: byPartial, want: acme.ErrUnauthorized, detail: "no valid authorization for *.w.example (a wildcard authorization for w.example);"},
		{name: "the wildcard's base only", by: byBaseOnly, want: acme.ErrUnauthorized, detail: "no valid authorization for *.w.example (a wildcard authorization for w.example);"},
		{name: "another key", by: byOtherKey, want: acme.ErrUnauthorized, detail: "not the certificate's key"},
		{name: "not a certificate", by: byOwner, cert: "junk", want: acme.ErrMalformed, detail: "cannot parse certificate"},
		{name: "another CA's certificate", by: byOwner, cert: "foreign", want: acme.ErrMalformed, detail: "not issued by this CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key := ecKey(t)
			leaf := e.issueWith(t, owner, key, names...)
			der := leaf.Raw
			switch tt.cert {
			case "junk":
				der = []byte("junk")
			case "foreign":
				der = leafOf(t, mustSign(t, foreign, key)).Raw
			}
			req := authority.RevokeRequest{CertDER: der, Reason: tt.reason}
			switch tt.by {
			case byOwner:
				req.Account = owner
			case byCertKey:
				req.Key = &jose.JSONWebKey{Key: key.Public()}
			case byOtherKey:
				req.Key = &jose.JSONWebKey{Key: ecKey(t).Public()}
			case byHolder:
				req.Account = holder
			case byPartial:
				req.Account = partial
			case byBaseOnly:
				req.Account = baseOnly
			case byStranger:
				req.Account = stranger
			}
			err := e.a.Revoke(t.Context(), req)
			wantProblem(t, "Revoke", err, tt.want)
			if err != nil {
				if !strings.Contains(err.Error(), tt.detail) {
					t.Fatalf("Revoke: %v; want the detail to say %q", err, tt.detail)
				}
				if c := e.revoked(t, leaf); c.Revoked {
					t.Fatalf("a refused revocation revoked the certificate: %+v", c)
				}
				return
			}
			c := e.revoked(t, leaf)
			if !c.Revoked || c.Reason != tt.reason {
				t.Fatalf("stored: revoked %v reason %d; want reason %d", c.Revoked, c.Reason, tt.reason)
			}
			serial := acme.SerialHex(leaf.SerialNumber)
			var ev map[string]any
			for _, m := range e.logs.events(t, "certificate.revoke") {
				if m["serial"] == serial {
					ev = m
				}
			}
			if ev == nil || ev["requester"] != tt.requester || ev["reason"] != float64(tt.reason) {
				t.Fatalf("audit record %v; want serial %s, reason %d, requester %s", ev, serial, tt.reason, tt.requester)
			}
			if _, blocked := ev["blocked_key"]; blocked != (tt.reason == 1) {
				t.Fatalf("audit record %v: blocked_key present %v, want %v", ev, blocked, tt.reason == 1)
			}
			err = e.a.Revoke(t.Context(), req)
			wantProblem(t, "second Revoke", err, acme.ErrAlreadyRevoked)
		})
	}
}

// TestRevokeByExpiredAuthorizations: an authorization that has expired
// since it was valid proves nothing.
func TestRevokeByExpiredAuthorizations(t *testing.T) {
	clk := newClock()
	e := newEnv(t, func(c *authority.Config) { c.Now = clk.Now; c.ValidAuthzLifetime = time.Hour })
	owner, holder := e.account(t), e.account(t)
	leaf := e.issueWith(t, owner, ecKey(t), "x.example")
	e.prove(t, holder, "x.example")
	clk.Advance(2 * time.Hour)
	err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: leaf.Raw, Account: holder})
	wantProblem(t, "Revoke with an expired authorization", err, acme.ErrUnauthorized)
	if !strings.Contains(err.Error(), "no valid authorization for x.example") {
		t.Fatalf("detail %v does not name the identifier", err)
	}
}

// TestKeyCompromise: a keyCompromise revocation blocks the key on every
// path that would take it again (finalize, whether the request looked the
// key up or not; new account; key change), and turns an earlier
// revocation's reason to keyCompromise.
func TestKeyCompromise(t *testing.T) {
	e := newEnv(t, nil)
	var reads atomic.Int64
	e.wrap = func(s authority.Store) authority.Store { return &countingBlockedKeys{Store: s, reads: &reads} }
	e.restart(t)
	owner := e.account(t)
	key := ecKey(t)
	first := e.issueWith(t, owner, key, "k.example")
	second := e.issueWith(t, owner, key, "k2.example") // the same key, another certificate
	jwk := &jose.JSONWebKey{Key: key.Public()}
	hash := acme.KeyHash(first.RawSubjectPublicKeyInfo)

	// Revoked for another reason first: keyCompromise follows.
	if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: first.Raw, Reason: 4, Account: owner}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.BlockedKey(t.Context(), hash); err == nil {
		t.Fatal("superseded blocked the key")
	}
	if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: first.Raw, Reason: 1, Key: jwk}); err != nil {
		t.Fatalf("keyCompromise after superseded: %v", err)
	}
	c := e.revoked(t, first)
	if c.Reason != 1 {
		t.Fatalf("reason %d after keyCompromise, want 1", c.Reason)
	}
	bk, err := e.store.BlockedKey(t.Context(), hash)
	if err != nil || bk.Serial != acme.SerialHex(first.SerialNumber) {
		t.Fatalf("blocked key: %+v, %v", bk, err)
	}
	evs := e.logs.events(t, "certificate.revoke")
	if last := evs[len(evs)-1]; last["previous_reason"] != float64(4) || last["blocked_key"] != hash {
		t.Fatalf("audit record %v: want previous_reason 4 and blocked_key %s", last, hash)
	}
	wantProblem(t, "keyCompromise again", e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: first.Raw, Reason: 1, Key: jwk}), acme.ErrAlreadyRevoked)
	// The other certificate with that key is not revoked by it (see the
	// report: no bad-key revoker), but may be.
	if e.revoked(t, second).Revoked {
		t.Fatal("the other certificate with the key was revoked")
	}
	if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: second.Raw, Reason: 1, Key: jwk}); err != nil {
		t.Fatalf("revoking the other certificate of a blocked key: %v", err)
	}

	o := e.prove(t, owner, "k3.example")
	nonce := func() string {
		n, err := e.a.NewNonce(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	lookedUp := func(h string) *authority.Caller {
		_, c, err := e.a.ConsumeNonceForAccount(t.Context(), nonce(), owner.ID, authority.Lookup{OrderID: o.ID, KeyHash: h})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	other := ecKey(t)
	for _, tc := range []struct {
		name   string
		caller *authority.Caller
		reads  int64 // of blocked keys, by Finalize
	}{
		{"finalize, key read from the store", authority.CallerOf(owner), 1},
		{"finalize, key looked up with the request", lookedUp(hash), 0},
		{"finalize, another key looked up", lookedUp(acme.KeyHash([]byte("another"))), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads.Store(0)
			_, err := e.a.Finalize(t.Context(), tc.caller, o.ID, csrWith(t, key, "k3.example"))
			wantProblem(t, "Finalize", err, acme.ErrBadPublicKey)
			if !strings.Contains(err.Error(), "key is blocked: it was reported compromised") {
				t.Fatalf("Finalize: %v", err)
			}
			if got := reads.Load(); got != tc.reads {
				t.Fatalf("Finalize read the blocked keys %d times, want %d", got, tc.reads)
			}
		})
	}
	t.Run("new account", func(t *testing.T) {
		_, _, err := e.a.NewAccount(t.Context(), jwk, authority.NewAccountRequest{})
		wantProblem(t, "NewAccount", err, acme.ErrBadPublicKey)
	})
	t.Run("existing account of a key blocked since", func(t *testing.T) {
		k := ecKey(t)
		kJWK := &jose.JSONWebKey{Key: k.Public()}
		acct, _, err := e.a.NewAccount(t.Context(), kJWK, authority.NewAccountRequest{})
		if err != nil {
			t.Fatal(err)
		}
		leaf := e.issueWith(t, owner, k, "k5.example")
		if err := e.a.Revoke(t.Context(), authority.RevokeRequest{CertDER: leaf.Raw, Reason: 1, Account: owner}); err != nil {
			t.Fatal(err)
		}
		// Found, not created: it can still deactivate itself.
		got, created, err := e.a.NewAccount(t.Context(), kJWK, authority.NewAccountRequest{})
		if err != nil || created || got.ID != acct.ID {
			t.Fatalf("NewAccount of an existing account's blocked key: %v, created %v, %v", got, created, err)
		}
	})
	t.Run("key change", func(t *testing.T) {
		cur := newKey(t)
		acct, _, err := e.a.NewAccount(t.Context(), cur, authority.NewAccountRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.a.ChangeKey(t.Context(), acct, cur, jwk)
		wantProblem(t, "ChangeKey", err, acme.ErrBadPublicKey)
	})
	t.Run("another key still issues", func(t *testing.T) {
		got, err := e.a.Finalize(t.Context(), lookedUp(acme.KeyHash([]byte("x"))), o.ID, csrWith(t, other, "k3.example"))
		if err != nil {
			t.Fatalf("Finalize with another key: %v", err)
		}
		if got.Status != acme.StatusValid {
			got = e.waitOrder(t, owner, o.ID)
		}
		if got.Status != acme.StatusValid {
			t.Fatalf("order %s", got.Status)
		}
	})
	t.Run("another replica", func(t *testing.T) {
		e.restart(t)
		o := e.prove(t, owner, "k4.example")
		_, err := e.a.Finalize(t.Context(), authority.CallerOf(owner), o.ID, csrWith(t, key, "k4.example"))
		wantProblem(t, fmt.Sprintf("Finalize after a restart with key %s", hash[:8]), err, acme.ErrBadPublicKey)
	})
}

// countingBlockedKeys counts the reads of blocked keys.
type countingBlockedKeys struct {
	authority.Store
	reads *atomic.Int64
}

func (c *countingBlockedKeys) BlockedKey(ctx context.Context, hash string) (*storage.BlockedKey, error) {
	c.reads.Add(1)
	return c.Store.BlockedKey(ctx, hash)
}
