package api_test

import (
	"path"
	"testing"

	"github.com/acmed/acmed/acme"
)

// TestDeactivatedAccountCanDoNothing: once an operator deactivates an
// account (acmed admin accounts deactivate, which writes the status as
// below), every request its key signs is unauthorized (RFC 8555 §7.3.6),
// finding the account again by its key included.
func TestDeactivatedAccountCanDoNothing(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	o := c.newOrder("gone.example")
	var az authz
	c.must(200, o.Authorizations[0], nil, &az)

	if _, err := e.store.UpdateAccount(t.Context(), path.Base(c.kid), func(a *acme.Account) error {
		a.Status = acme.StatusDeactivated
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		url     string
		payload any
		opts    jwsOpts
	}{
		{"new order", e.url("/acme/new-order"), map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "y.example"}}}, jwsOpts{}},
		{"get order", o.url, nil, jwsOpts{}},
		{"list orders", c.kid + "/orders", nil, jwsOpts{}},
		{"get authorization", o.Authorizations[0], nil, jwsOpts{}},
		{"answer challenge", az.Challenges[0].URL, map[string]any{}, jwsOpts{}},
		{"finalize", o.Finalize, map[string]any{"csr": "AA"}, jwsOpts{}},
		{"update account", c.kid, map[string]any{"contact": []string{"mailto:x@example.com"}}, jwsOpts{}},
		{"new account with the key", e.url("/acme/new-account"), map[string]any{"termsOfServiceAgreed": true}, jwsOpts{useJWK: true}},
		{"find account by key", e.url("/acme/new-account"), map[string]any{"onlyReturnExisting": true}, jwsOpts{useJWK: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problemType(t, c.post(tc.url, tc.payload, tc.opts), 403, "unauthorized")
		})
	}
}
