// Package storagetest is the conformance suite every storage.Store backend
// must pass, so that the API behaves the same whichever store it runs on.
package storagetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Run runs the suite. open must return a fresh, empty store whose clock is
// close to real time (nonce expiry is checked against it), and close it
// with t.Cleanup. Subtests run one after another, so backends that share a
// server between stores need not isolate them beyond emptying it.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) storage.Store)
	}{
		{"Accounts", testAccounts},
		{"ListAccounts", testListAccounts},
		{"UpdateAbort", testUpdateAbort},
		{"Orders", testOrders},
		{"AccountOrders", testAccountOrders},
		{"Authorizations", testAuthorizations},
		{"Certificates", testCertificates},
		{"Nonces", testNonces},
		{"Jobs", testJobs},
		{"Options", testOptions},
		{"CompareAndSet", testCompareAndSet},
		{"CA", testCA},
		{"EABKeys", testEABKeys},
		{"BlockedKeys", testBlockedKeys},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// waitTimeout bounds every wait on another goroutine, so a broken backend
// fails the test instead of hanging it.
const waitTimeout = 10 * time.Second

// Resource times are fixed so that fixtures built twice compare equal; they
// are in UTC and whole seconds so any encoding round-trips them exactly.
// Expiry lies far ahead because a backend may derive TTLs from it.
func createdAt() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }
func expiresAt() time.Time { return time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC) }

func newAccount(id, thumbprint string) *acme.Account {
	return &acme.Account{
		ID:            id,
		Status:        acme.StatusValid,
		Contact:       []string{"mailto:ops@example.com"},
		Key:           []byte(`{"kty":"EC","crv":"P-256","x":"x","y":"y"}`),
		KeyThumbprint: thumbprint,
		TermsAgreed:   true,
		CreatedAt:     createdAt(),
	}
}

func newOrder(id, accountID string, authzs ...*acme.Authorization) *acme.Order {
	o := &acme.Order{
		ID:        id,
		AccountID: accountID,
		Status:    acme.StatusPending,
		Expires:   expiresAt(),
		CreatedAt: createdAt(),
	}
	for _, a := range authzs {
		o.Identifiers = append(o.Identifiers, a.Identifier)
		o.AuthzIDs = append(o.AuthzIDs, a.ID)
	}
	return o
}

func newAuthz(id, accountID, name string, wildcard bool) *acme.Authorization {
	return &acme.Authorization{
		ID:         id,
		AccountID:  accountID,
		Identifier: acme.Identifier{Type: acme.IdentifierDNS, Value: name},
		Wildcard:   wildcard,
		Status:     acme.StatusPending,
		Expires:    expiresAt(),
		Challenges: []acme.Challenge{
			{ID: id + "-http", Type: acme.ChallengeHTTP01, Token: "tok-" + id, Status: acme.StatusPending},
			{ID: id + "-dns", Type: acme.ChallengeDNS01, Token: "tok-" + id, Status: acme.StatusPending},
		},
	}
}

func newCertificate(serial, accountID, orderID string) *acme.Certificate {
	return &acme.Certificate{
		Serial:      serial,
		AccountID:   accountID,
		OrderID:     orderID,
		ChainPEM:    []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "example.com"}},
		NotAfter:    expiresAt(),
	}
}

func mustEqual[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func mustNot(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func mustBe(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}
