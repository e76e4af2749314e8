package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme/profile"
)

// issueWith has c order and receive a certificate for names under key; it
// returns the leaf, base64url DER as revokeCert carries it.
func (c *client) issueWith(key crypto.Signer, names ...string) string {
	c.e.t.Helper()
	o := c.newOrder(names...)
	c.authorize(o)
	_, chain := c.finalizeChain(o, csrDER(c.e.t, key, "", names...))
	return base64.RawURLEncoding.EncodeToString(chain[0])
}

// TestRevokeCert: revokeCert over HTTP, each way (§7.6) and each refusal,
// with its status, problem type and a detail that says why.
func TestRevokeCert(t *testing.T) {
	e := newEnv(t)
	revoke := e.url("/acme/revoke-cert")
	owner, holder, stranger := e.newClient(), e.newClient(), e.newClient()
	for _, c := range []*client{owner, holder, stranger} {
		c.register()
	}
	holder.authorize(holder.newOrder("rc.example"))

	tests := []struct {
		name   string
		signer func(certKey crypto.Signer) (*client, jwsOpts)
		reason any // nil: none sent
		cert   func(der string) string
		status int
		typ    string // "" for success
		detail string
	}{
		{name: "ordering account", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} }, reason: 4, status: 200},
		{name: "ordering account, no reason", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} }, status: 200},
		{name: "certificate key", signer: func(k crypto.Signer) (*client, jwsOpts) {
			return stranger, jwsOpts{useJWK: true, key: k, alg: jose.ES256}
		}, reason: 1, status: 200},
		{name: "authorization holder", signer: func(crypto.Signer) (*client, jwsOpts) { return holder, jwsOpts{} }, reason: 5, status: 200},
		{name: "authorization holder, keyCompromise", signer: func(crypto.Signer) (*client, jwsOpts) { return holder, jwsOpts{} }, reason: 1,
			status: 400, typ: "badRevocationReason", detail: "allowed for an account holding authorizations: 0 (unspecified), 3"},
		{name: "stranger", signer: func(crypto.Signer) (*client, jwsOpts) { return stranger, jwsOpts{} },
			status: 403, typ: "unauthorized", detail: "holds no valid authorization for rc.example"},
		{name: "another key", signer: func(crypto.Signer) (*client, jwsOpts) {
			return stranger, jwsOpts{useJWK: true}
		}, status: 403, typ: "unauthorized", detail: "not the certificate's key"},
		{name: "cACompromise", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} }, reason: 2,
			status: 400, typ: "badRevocationReason", detail: "allowed: 0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded), 5 (cessationOfOperation), 9 (privilegeWithdrawn)"},
		{name: "removeFromCRL", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} }, reason: 8,
			status: 400, typ: "badRevocationReason", detail: "reason code 8"},
		{name: "reason not a number", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} }, reason: "keyCompromise",
			status: 400, typ: "malformed"},
		{name: "not base64url", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} },
			cert: func(string) string { return "!!" }, status: 400, typ: "malformed"},
		{name: "not a certificate", signer: func(crypto.Signer) (*client, jwsOpts) { return owner, jwsOpts{} },
			cert: func(string) string { return base64.RawURLEncoding.EncodeToString([]byte("junk")) }, status: 400, typ: "malformed"},
	}
	// Issued up front: the client helpers fail the test they were made
	// for, not a subtest.
	keys, issued := make([]crypto.Signer, len(tests)), make([]string, len(tests))
	for i := range tests {
		keys[i] = newKey(t)
		issued[i] = owner.issueWith(keys[i], "rc.example")
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der := issued[i]
			if tt.cert != nil {
				der = tt.cert(der)
			}
			payload := map[string]any{"certificate": der}
			if tt.reason != nil {
				payload["reason"] = tt.reason
			}
			c, opts := tt.signer(keys[i])
			r := c.post(revoke, payload, opts)
			if tt.typ == "" {
				if r.status != http.StatusOK {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
				problemType(t, c.post(revoke, payload, opts), 400, "alreadyRevoked")
				return
			}
			problemType(t, r, tt.status, tt.typ)
			if p := r.problem(t); !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("detail %q does not say %q", p.Detail, tt.detail)
			}
			// Refused, so still revocable by its owner.
			if r := owner.post(revoke, map[string]any{"certificate": issued[i]}, jwsOpts{}); r.status != http.StatusOK {
				t.Fatalf("revoke by the owner after the refusal: %d %s", r.status, r.body)
			}
		})
	}
}

// TestRevokeKeyCompromise: after a keyCompromise revocation the key is
// badPublicKey as a CSR's key at finalize, as a new account's key and as
// the new key of a key change.
func TestRevokeKeyCompromise(t *testing.T) {
	e := newEnv(t)
	owner := e.newClient()
	owner.register()
	key := newKey(t)
	der := owner.issueWith(key, "kc.example")
	owner.must(http.StatusOK, e.url("/acme/revoke-cert"), map[string]any{"certificate": der, "reason": 1}, nil)

	const blocked = "key is blocked: it was reported compromised"
	wantBlocked := func(t *testing.T, r *response) {
		t.Helper()
		problemType(t, r, 400, "badPublicKey")
		if d := r.problem(t).Detail; !strings.Contains(d, blocked) {
			t.Fatalf("detail %q", d)
		}
	}
	o := owner.newOrder("kc2.example")
	owner.authorize(o)
	t.Run("finalize", func(t *testing.T) {
		wantBlocked(t, owner.post(o.Finalize, map[string]string{"csr": csrDER(t, key, "", "kc2.example")}, jwsOpts{}))
		// The order stays ready for another key.
		if r := owner.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "kc2.example")}, jwsOpts{}); r.status != http.StatusOK {
			t.Fatalf("finalize with another key: %d %s", r.status, r.body)
		}
	})
	t.Run("new account", func(t *testing.T) {
		c := e.newClient()
		c.key = key
		wantBlocked(t, c.post(e.url("/acme/new-account"), map[string]any{"termsOfServiceAgreed": true}, jwsOpts{}))
	})
	other := e.newClient()
	other.register()
	t.Run("key change", func(t *testing.T) {
		kc := e.url("/acme/key-change")
		inner := innerJWS(t, key.(*ecdsa.PrivateKey), kc, map[string]any{"account": other.kid, "oldKey": jose.JSONWebKey{Key: other.key.Public()}}, nil, "")
		wantBlocked(t, other.post(kc, inner, jwsOpts{}))
	})
}

// TestRevokeSPIFFE: a certificate naming a SPIFFE ID is revoked by its
// ordering account, never by an account holding authorizations for its
// DNS names, since none proves the SPIFFE ID.
func TestRevokeSPIFFE(t *testing.T) {
	e := newProfileEnv(t)
	svid, holder := e.account("svid"), e.account("")
	o := svid.readyOrder(map[string]any{"profile": profile.SPIFFE}, "api.example")
	_, chain := svid.finalizeChain(o, csrDER(t, newKey(t), "", "api.example"))
	der := base64.RawURLEncoding.EncodeToString(chain[0])
	holder.authorize(holder.newOrder("api.example"))
	r := holder.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": der}, jwsOpts{})
	problemType(t, r, 403, "unauthorized")
	if d := r.problem(t).Detail; !strings.Contains(d, svidID) {
		t.Fatalf("detail %q does not name the SPIFFE ID", d)
	}
	svid.must(http.StatusOK, e.url("/acme/revoke-cert"), map[string]any{"certificate": der}, nil)
}
