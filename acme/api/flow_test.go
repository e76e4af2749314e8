package api_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestDirectoryAndNonce(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url("/directory"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Link"), `rel="index"`) {
		t.Fatalf("directory: %d %v", resp.StatusCode, resp.Header)
	}
	for method, want := range map[string]int{http.MethodHead: 200, http.MethodGet: 204} {
		req, _ := http.NewRequest(method, e.url("/acme/new-nonce"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		n := resp.Header.Get("Replay-Nonce")
		if resp.StatusCode != want || resp.Header.Get("Cache-Control") != "no-store" || n == "" || strings.ContainsAny(n, "=+/") {
			t.Errorf("%s new-nonce: %d, Cache-Control %q, nonce %q", method, resp.StatusCode, resp.Header.Get("Cache-Control"), n)
		}
	}
	resp, err = http.Get(e.url("/acme/order/x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET on a POST-only resource: %d", resp.StatusCode)
	}
}

func problemType(t *testing.T, r *response, status int, typ string) {
	t.Helper()
	p := r.problem(t)
	if r.status != status || p.Type != "urn:ietf:params:acme:error:"+typ {
		t.Fatalf("got %d %s (%s), want %d %s", r.status, p.Type, p.Detail, status, typ)
	}
}

func TestFinalizeCSRRules(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	o := c.newOrder("a.example", "b.example")
	r := c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "a.example", "b.example")}, jwsOpts{})
	problemType(t, r, 403, "orderNotReady")
	c.authorize(o)

	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	tests := []struct {
		name string
		csr  string
		typ  string
	}{
		{"not base64url", "!!!", "badCSR"},
		{"not DER", base64.RawURLEncoding.EncodeToString([]byte("garbage")), "badCSR"},
		{"missing a name", csrDER(t, newKey(t), "", "a.example"), "badCSR"},
		{"extra name", csrDER(t, newKey(t), "", "a.example", "b.example", "c.example"), "badCSR"},
		{"CN not in order", csrDER(t, newKey(t), "c.example", "a.example", "b.example"), "badCSR"},
		{"account key", csrDER(t, c.key, "", "a.example", "b.example"), "badCSR"},
		{"RSA 1024", csrDER(t, rsa1024, "", "a.example", "b.example"), "badPublicKey"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problemType(t, c.post(o.Finalize, map[string]string{"csr": tt.csr}, jwsOpts{}), 400, tt.typ)
		})
	}
	// The order is still ready after refused CSRs, and a good one is accepted once.
	var fin order
	r = c.must(200, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "b.example", "a.example", "b.example")}, &fin)
	if fin.Status != "valid" || fin.Certificate == "" || r.header.Get("Location") != o.url {
		t.Fatalf("finalize: %+v, Location %q", fin, r.header.Get("Location"))
	}
	problemType(t, c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "a.example", "b.example")}, jwsOpts{}), 403, "orderNotReady")

	cert := c.must(200, fin.Certificate, nil, nil)
	if ct := cert.header.Get("Content-Type"); ct != "application/pem-certificate-chain" {
		t.Errorf("certificate Content-Type %q", ct)
	}
	if n := strings.Count(string(cert.body), "BEGIN CERTIFICATE"); n != 2 {
		t.Errorf("chain has %d certificates, want leaf and intermediate", n)
	}
	block, _ := pem.Decode(cert.body)
	// Revocation by the certificate's own key is tested end to end; here: a
	// reason code subscribers may not use, then a second revocation.
	der := base64.RawURLEncoding.EncodeToString(block.Bytes)
	problemType(t, c.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": der, "reason": 2}, jwsOpts{}), 400, "badRevocationReason")
	c.must(200, e.url("/acme/revoke-cert"), map[string]any{"certificate": der, "reason": 1}, nil)
	problemType(t, c.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": der}, jwsOpts{}), 400, "alreadyRevoked")

	other := e.newClient()
	other.register()
	problemType(t, other.post(fin.Certificate, nil, jwsOpts{}), 403, "unauthorized")
	problemType(t, other.post(o.url, nil, jwsOpts{}), 403, "unauthorized")
}

func TestExpiredAndDeactivatedResources(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()

	// Deactivated authorization: its challenge can no longer be answered and
	// its order is invalid.
	o := c.newOrder("d.example")
	var az authz
	c.must(200, o.Authorizations[0], map[string]string{"status": "deactivated"}, &az)
	if az.Status != "deactivated" {
		t.Fatalf("authz status %s", az.Status)
	}
	problemType(t, c.post(az.Challenges[0].URL, map[string]any{}, jwsOpts{}), 400, "malformed")
	var got order
	c.must(200, o.url, nil, &got)
	if got.Status != "invalid" {
		t.Fatalf("order with deactivated authz is %s", got.Status)
	}
	problemType(t, c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "d.example")}, jwsOpts{}), 403, "orderNotReady")

	// Expired: the clock passes the order's expiry.
	o = c.newOrder("x.example")
	e.clock.Add(25 * time.Hour)
	c.must(200, o.Authorizations[0], nil, &az)
	if az.Status != "expired" {
		t.Fatalf("authz after expiry is %s", az.Status)
	}
	problemType(t, c.post(az.Challenges[0].URL, map[string]any{}, jwsOpts{}), 400, "malformed")
	c.must(200, o.url, nil, &got)
	if got.Status != "invalid" {
		t.Fatalf("expired order is %s", got.Status)
	}

	// Deactivated account: every request it signs is unauthorized.
	c.must(200, c.kid, map[string]string{"status": "deactivated"}, nil)
	problemType(t, c.post(e.url("/acme/new-order"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "y.example"}}}, jwsOpts{}), 403, "unauthorized")
}

func TestPOSTAsGETRules(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	o := c.newOrder("p.example")
	problemType(t, c.post(o.url, map[string]any{}, jwsOpts{}), 400, "malformed")
	problemType(t, c.post(c.kid+"/orders", map[string]any{}, jwsOpts{}), 400, "malformed")
	problemType(t, c.post(o.Authorizations[0], map[string]string{"status": "valid"}, jwsOpts{}), 400, "malformed")
	problemType(t, c.post(e.url("/acme/order/nope"), nil, jwsOpts{}), 404, "malformed")
}

func TestNewOrderIdentifiers(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	post := func(ids ...map[string]string) *response {
		return c.post(e.url("/acme/new-order"), map[string]any{"identifiers": ids}, jwsOpts{})
	}
	problemType(t, post(), 400, "malformed")
	problemType(t, post(map[string]string{"type": "dns", "value": "bad_name.example"}), 400, "rejectedIdentifier")
	problemType(t, post(map[string]string{"type": "email", "value": "a@b.example"}), 400, "unsupportedIdentifier")
	r := post(map[string]string{"type": "dns", "value": "-x.example"}, map[string]string{"type": "dns", "value": "ok.example"}, map[string]string{"type": "dns", "value": "y..example"})
	p := r.problem(t)
	if p.Type != "urn:ietf:params:acme:error:rejectedIdentifier" || len(p.Subproblems) != 2 || p.Subproblems[0].Identifier == nil {
		t.Fatalf("want rejectedIdentifier with 2 subproblems naming identifiers, got %+v", p)
	}
	var o order
	c.must(201, e.url("/acme/new-order"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "MiXed.Example"}}}, &o)
	if o.Identifiers[0].Value != "mixed.example" {
		t.Fatalf("identifier not normalised: %+v", o.Identifiers)
	}
	notAfter := time.Now().Add(200 * time.Hour).UTC().Format(time.RFC3339)
	problemType(t, c.post(e.url("/acme/new-order"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "a.example"}}, "notAfter": notAfter}, jwsOpts{}), 400, "malformed")
}

func TestAccountContacts(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	problemType(t, c.post(e.url("/acme/new-account"), map[string]any{"contact": []string{"tel:123"}}, jwsOpts{}), 400, "unsupportedContact")
	problemType(t, c.post(e.url("/acme/new-account"), map[string]any{"contact": []string{"mailto:a@x.example,b@x.example"}}, jwsOpts{}), 400, "invalidContact")
	problemType(t, c.post(e.url("/acme/new-account"), map[string]any{"onlyReturnExisting": true}, jwsOpts{}), 400, "accountDoesNotExist")
	c.register()
	again := c.post(e.url("/acme/new-account"), map[string]any{}, jwsOpts{useJWK: true})
	if again.status != 200 || again.header.Get("Location") != c.kid {
		t.Fatalf("repeated newAccount Location %q, want %q", again.header.Get("Location"), c.kid)
	}
	problemType(t, c.post(c.kid, map[string]any{"contact": []string{"mailto:bad"}}, jwsOpts{}), 400, "invalidContact")
	other := e.newClient()
	other.register()
	problemType(t, other.post(c.kid, nil, jwsOpts{}), 403, "unauthorized")
}

// TestAuthorizationReuse: a new order reuses the account's valid
// authorization for the same identifier, but not another account's, and
// not for the wildcard of the name.
func TestAuthorizationReuse(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	first := c.newOrder("reuse.example")
	c.authorize(first)
	second := c.newOrder("reuse.example")
	if second.Status != "ready" || second.Authorizations[0] != first.Authorizations[0] {
		t.Fatalf("second order %s with %v; want ready reusing %s", second.Status, second.Authorizations, first.Authorizations[0])
	}
	wild := c.newOrder("*.reuse.example")
	if wild.Status != "pending" || wild.Authorizations[0] == first.Authorizations[0] {
		t.Fatalf("wildcard order reused the base name's authorization: %+v", wild)
	}
	var az authz
	c.must(200, wild.Authorizations[0], nil, &az)
	if len(az.Challenges) != 1 || az.Challenges[0].Type != "dns-01" {
		t.Fatalf("wildcard authorization offers %+v, want dns-01 only", az.Challenges)
	}
	other := e.newClient()
	other.register()
	if o := other.newOrder("reuse.example"); o.Status != "pending" {
		t.Fatalf("another account's order is %s", o.Status)
	}
}
