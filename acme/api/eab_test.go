package api_test

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

var eabSecret = []byte(strings.Repeat("0123456789abcdef", 4)) // 64 bytes: HS512 takes it

// newEABEnv is newEnv with --eab mode and keys in the store: "team"
// (allow *.team.example, prevalidated ci.team.example), "open" (no
// patterns), "revoked", "expired" and "once" (single-use).
func newEABEnv(t *testing.T, mode authority.EABMode) *eabEnv {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return newEABEnvOn(t, store, mode)
}

// eabEnv is an env with the store under it, whichever backend.
type eabEnv struct {
	*env
	st authority.Store
}

func newEABEnvOn(t *testing.T, store authority.Store, mode authority.EABMode) *eabEnv {
	t.Helper()
	e := &eabEnv{env: startEnvWith(t, store, nil, nil, func(c *authority.Config) { c.EAB = mode }), st: store}
	now := e.clock.Now()
	for _, k := range []*acme.EABKey{
		{KID: "team", Name: "team", Allow: []string{"*.team.example"}, Prevalidated: []string{"ci.team.example"}},
		{KID: "open", Name: "open"},
		{KID: "revoked", Name: "revoked", Revoked: true, RevokedAt: now},
		{KID: "expired", Name: "expired", Expires: now.Add(-time.Minute)},
		{KID: "once", Name: "once", SingleUse: true},
		{KID: "short", Name: "short", Prevalidated: []string{"*.short.example"}, MaxValidity: 2 * time.Hour},
	} {
		k.HMAC, k.CreatedAt = eabSecret, now
		if err := store.CreateEABKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// binding makes an externalAccountBinding (RFC 8555 §7.3.4) over the
// public key of over, for url.
func binding(t *testing.T, kid string, secret []byte, alg jose.SignatureAlgorithm, url string, over crypto.Signer) json.RawMessage {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid).WithHeader("url", url)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: secret}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := json.Marshal(jose.JSONWebKey{Key: over.Public()})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(jwk)
	if err != nil {
		t.Fatal(err)
	}
	return json.RawMessage(jws.FullSerialize())
}

func (c *client) registerWith(eab json.RawMessage) *response {
	c.e.t.Helper()
	payload := map[string]any{"termsOfServiceAgreed": true}
	if eab != nil {
		payload["externalAccountBinding"] = eab
	}
	r := c.post(c.e.url("/acme/new-account"), payload, jwsOpts{useJWK: true})
	if r.status == http.StatusCreated || r.status == http.StatusOK {
		c.kid = r.header.Get("Location")
	}
	return r
}

// TestEABRefused: every bad binding gets its problem and writes nothing:
// no account, and the key binds no account.
func TestEABRefused(t *testing.T) {
	e := newEABEnv(t, authority.EABOptional)
	newAcct := e.url("/acme/new-account")
	used := e.newClient()
	if r := used.registerWith(binding(t, "once", eabSecret, jose.HS256, newAcct, used.key)); r.status != http.StatusCreated {
		t.Fatalf("first use of the single-use key: %d %s", r.status, r.body)
	}
	other := newKey(t)
	for _, tc := range []struct {
		name string
		eab  func(c *client) json.RawMessage
		typ  string
	}{
		{"wrong MAC", func(c *client) json.RawMessage {
			return binding(t, "team", []byte(strings.Repeat("another secret! ", 4)), jose.HS256, newAcct, c.key)
		}, "unauthorized"},
		{"unknown kid", func(c *client) json.RawMessage { return binding(t, "nope", eabSecret, jose.HS256, newAcct, c.key) }, "unauthorized"},
		{"revoked kid", func(c *client) json.RawMessage { return binding(t, "revoked", eabSecret, jose.HS256, newAcct, c.key) }, "unauthorized"},
		{"expired kid", func(c *client) json.RawMessage { return binding(t, "expired", eabSecret, jose.HS256, newAcct, c.key) }, "unauthorized"},
		{"over another key", func(c *client) json.RawMessage { return binding(t, "team", eabSecret, jose.HS256, newAcct, other) }, "unauthorized"},
		{"for another URL", func(c *client) json.RawMessage {
			return binding(t, "team", eabSecret, jose.HS256, e.url("/acme/new-order"), c.key)
		}, "unauthorized"},
		{"single-use key used twice", func(c *client) json.RawMessage { return binding(t, "once", eabSecret, jose.HS512, newAcct, c.key) }, "unauthorized"},
		{"not an object", func(*client) json.RawMessage { return json.RawMessage(`"a.b.c"`) }, "malformed"},
		{"compact serialization", func(c *client) json.RawMessage {
			var m map[string]string
			_ = json.Unmarshal(binding(t, "team", eabSecret, jose.HS256, newAcct, c.key), &m)
			s, _ := json.Marshal(m["protected"] + "." + m["payload"] + "." + m["signature"])
			return s
		}, "malformed"},
		{"no kid", func(c *client) json.RawMessage { return binding(t, "", eabSecret, jose.HS256, newAcct, c.key) }, "malformed"},
		{"payload not a JWK", func(c *client) json.RawMessage {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: eabSecret},
				(&jose.SignerOptions{}).WithHeader("kid", "team").WithHeader("url", newAcct))
			jws, _ := signer.Sign([]byte(`{"hello":"world"}`))
			return json.RawMessage(jws.FullSerialize())
		}, "malformed"},
		{"signed, not MACed", func(c *client) json.RawMessage {
			signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key},
				(&jose.SignerOptions{}).WithHeader("kid", "team").WithHeader("url", newAcct))
			jwk, _ := json.Marshal(jose.JSONWebKey{Key: c.key.Public()})
			jws, _ := signer.Sign(jwk)
			return json.RawMessage(jws.FullSerialize())
		}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.newClient()
			before := boundAccounts(t, e)
			r := c.registerWith(tc.eab(c))
			status := http.StatusForbidden
			if tc.typ == "malformed" {
				status = http.StatusBadRequest
			}
			problemType(t, r, status, tc.typ)
			if _, err := e.st.AccountByKey(t.Context(), c.thumbprint()); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a refused binding left an account: %v", err)
			}
			if after := boundAccounts(t, e); after != before {
				t.Fatalf("a refused binding bound an account: %d accounts bound before, %d after", before, after)
			}
		})
	}
}

func boundAccounts(t *testing.T, e *eabEnv) int {
	t.Helper()
	keys, err := e.st.ListEABKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, k := range keys {
		n += len(k.Accounts)
	}
	return n
}

// TestEABRequired: with --eab required a new account without a binding
// gets externalAccountRequired, and the directory says so.
func TestEABRequired(t *testing.T) {
	e := newEABEnv(t, authority.EABRequired)
	var dir struct {
		Meta struct {
			ExternalAccountRequired bool `json:"externalAccountRequired"`
		} `json:"meta"`
	}
	resp, err := http.Get(e.url("/directory"))
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil || !dir.Meta.ExternalAccountRequired {
		t.Fatalf("directory meta.externalAccountRequired is not true (%v)", err)
	}
	c := e.newClient()
	problemType(t, c.registerWith(nil), http.StatusUnauthorized, "externalAccountRequired")
	if _, err := e.st.AccountByKey(t.Context(), c.thumbprint()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused registration left an account: %v", err)
	}
	if r := c.registerWith(binding(t, "open", eabSecret, jose.HS384, e.url("/acme/new-account"), c.key)); r.status != http.StatusCreated {
		t.Fatalf("registration with a binding: %d %s", r.status, r.body)
	}
}

// TestEABOff: with --eab off a binding is ignored, even a bad one, and
// the account is bound to nothing.
func TestEABOff(t *testing.T) {
	e := newEABEnv(t, authority.EABOff)
	c := e.newClient()
	if r := c.registerWith(binding(t, "nope", eabSecret, jose.HS256, e.url("/acme/new-account"), c.key)); r.status != http.StatusCreated {
		t.Fatalf("registration with an ignored binding: %d %s", r.status, r.body)
	}
	acct, err := e.st.AccountByKey(t.Context(), c.thumbprint())
	if err != nil || acct.EABKID != "" {
		t.Fatalf("account %+v, %v: want one bound to no key", acct, err)
	}
}

// TestEABAccountLifecycle, with a hand-made client: the account is bound,
// the re-sent binding gets it back (200), a binding of another key is
// refused, the key's patterns apply, prevalidated identifiers need no
// challenge, and revoking the key stops new-order and finalize.
func TestEABAccountLifecycle(t *testing.T) {
	testEABAccountLifecycle(t, newEABEnv(t, authority.EABOptional))
}

// TestEABAccountLifecycleRedis is the same on a Redis store.
func TestEABAccountLifecycleRedis(t *testing.T) {
	store, err := redis.Open(t.Context(), redistest.Start(t).URL, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	testEABAccountLifecycle(t, newEABEnvOn(t, store, authority.EABOptional))
}

func testEABAccountLifecycle(t *testing.T, e *eabEnv) {
	newAcct := e.url("/acme/new-account")
	c := e.newClient()
	eab := binding(t, "team", eabSecret, jose.HS256, newAcct, c.key)
	if r := c.registerWith(eab); r.status != http.StatusCreated {
		t.Fatalf("registration: %d %s", r.status, r.body)
	}
	acct, err := e.st.AccountByKey(t.Context(), c.thumbprint())
	if err != nil || acct.EABKID != "team" {
		t.Fatalf("account %+v, %v: want one bound to key team", acct, err)
	}
	// cert-manager re-sends its binding (a fresh MAC, the same key).
	if r := c.registerWith(binding(t, "team", eabSecret, jose.HS256, newAcct, c.key)); r.status != http.StatusOK || r.header.Get("Location") != c.kid {
		t.Fatalf("re-sent binding: %d %s, want 200 and the account", r.status, r.body)
	}
	problemType(t, c.registerWith(binding(t, "open", eabSecret, jose.HS256, newAcct, c.key)), http.StatusForbidden, "unauthorized")
	if r := c.registerWith(nil); r.status != http.StatusOK {
		t.Fatalf("new-account without a binding for a bound account: %d %s", r.status, r.body)
	}

	// Policy: the key allows *.team.example only.
	r := c.post(e.url("/acme/new-order"), map[string]any{"identifiers": []acme.Identifier{
		{Type: "dns", Value: "a.team.example"}, {Type: "dns", Value: "a.other.example"}}}, jwsOpts{})
	problemType(t, r, http.StatusBadRequest, "rejectedIdentifier")
	if p := r.problem(t); len(p.Subproblems) != 1 || p.Subproblems[0].Identifier.Value != "a.other.example" {
		t.Fatalf("subproblems %+v, want one for a.other.example", p.Subproblems)
	}
	// Prevalidated: valid at once, no challenge; the other needs one.
	o := c.newOrder("ci.team.example", "web.team.example")
	var states []string
	for _, u := range o.Authorizations {
		var az authz
		c.must(http.StatusOK, u, nil, &az)
		states = append(states, az.Status+"/"+strings.Repeat("c", len(az.Challenges)))
	}
	if states[0] != "valid/" || !strings.HasPrefix(states[1], "pending/c") {
		t.Fatalf("authorization states %v: want ci.team.example valid with no challenge, web.team.example pending", states)
	}
	pre := c.newOrder("ci.team.example")
	if pre.Status != "ready" {
		t.Fatalf("an order of prevalidated identifiers is %s, want ready", pre.Status)
	}
	// Revoking the key stops the account: new-order and finalize.
	if _, err := e.st.UpdateEABKey(t.Context(), "team", func(k *acme.EABKey) error { k.Revoked = true; return nil }); err != nil {
		t.Fatal(err)
	}
	r = c.post(e.url("/acme/new-order"), map[string]any{"identifiers": []acme.Identifier{{Type: "dns", Value: "ci.team.example"}}}, jwsOpts{})
	problemType(t, r, http.StatusForbidden, "unauthorized")
	if !strings.Contains(r.problem(t).Detail, `"team" is revoked`) {
		t.Fatalf("detail %q does not name the revoked key", r.problem(t).Detail)
	}
	r = c.post(pre.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "ci.team.example")}, jwsOpts{})
	problemType(t, r, http.StatusForbidden, "unauthorized")
}

// TestEABRealClient: golang.org/x/crypto/acme registers with a binding,
// orders a prevalidated name and gets a certificate without answering a
// challenge; a name outside the key's policy is refused; re-registering
// finds the account.
func TestEABRealClient(t *testing.T) {
	e := newEABEnv(t, authority.EABRequired)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	key := newKey(t)
	cl := &xacme.Client{Key: key, DirectoryURL: e.url("/directory")}
	if _, err := cl.Register(ctx, &xacme.Account{}, xacme.AcceptTOS); err == nil {
		t.Fatal("registration without a binding succeeded under --eab required")
	}
	acct := &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: "team", Key: eabSecret}}
	if _, err := cl.Register(ctx, acct, xacme.AcceptTOS); err != nil {
		t.Fatalf("register with a binding: %v", err)
	}
	if _, err := cl.Register(ctx, acct, xacme.AcceptTOS); !errors.Is(err, xacme.ErrAccountAlreadyExists) {
		t.Fatalf("re-register with the binding: %v, want the existing account (200)", err)
	}
	if _, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs("x.elsewhere.example")); err == nil || !strings.Contains(err.Error(), "rejectedIdentifier") {
		t.Fatalf("order outside the key's policy: %v, want rejectedIdentifier", err)
	}
	o, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs("ci.team.example"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != xacme.StatusReady {
		t.Fatalf("prevalidated order is %s, want ready", o.Status)
	}
	csr := csrBytes(t, "ci.team.example")
	der, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil || len(der) == 0 {
		t.Fatalf("finalize: %v", err)
	}
}

func csrBytes(t *testing.T, names ...string) []byte {
	t.Helper()
	der, err := base64.RawURLEncoding.DecodeString(csrDER(t, newKey(t), "", names...))
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestEABMaxValidity: a key's --max-validity caps what its accounts may
// ask for (notAfter) and what they get when they ask for nothing.
func TestEABMaxValidity(t *testing.T) {
	e := newEABEnv(t, authority.EABOptional)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cl := &xacme.Client{Key: newKey(t), DirectoryURL: e.url("/directory")}
	acct := &xacme.Account{ExternalAccountBinding: &xacme.ExternalAccountBinding{KID: "short", Key: eabSecret}}
	if _, err := cl.Register(ctx, acct, xacme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	_, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs("a.short.example"), xacme.WithOrderNotAfter(e.clock.Now().Add(10*time.Hour)))
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:malformed" || !strings.Contains(ae.Detail, "at most 2h0m0s from notBefore") {
		t.Fatalf("order past the key's max validity: %v, want malformed", err)
	}
	o, err := cl.AuthorizeOrder(ctx, xacme.DomainIDs("a.short.example"))
	if err != nil {
		t.Fatal(err)
	}
	der, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csrBytes(t, "a.short.example"), false)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got > 2*time.Hour+2*time.Minute {
		t.Fatalf("certificate valid for %s; the key allows 2h", got)
	}
}
