package storagetest

import (
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testAuthorizations(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("update challenge", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAuthz("authz-1", "acct-1", "example.com", false)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1", a), []*acme.Authorization{a}))
		want := newAuthz("authz-1", "acct-1", "example.com", false)
		want.Challenges[1].Status = acme.StatusInvalid
		want.Challenges[1].Error = &acme.Problem{Type: "urn:ietf:params:acme:error:dns", Detail: "no TXT record", Status: 400}
		_, err := s.UpdateAuthorization(ctx, "authz-1", func(a *acme.Authorization) error {
			c := a.Challenge("authz-1-dns")
			c.Status, c.Error = want.Challenges[1].Status, want.Challenges[1].Error
			return nil
		})
		mustNot(t, "UpdateAuthorization", err)
		got, err := s.Authorization(ctx, "authz-1")
		mustNot(t, "Authorization", err)
		mustEqual(t, "stored authorization", got, want)
	})

	t.Run("valid authorization index", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		example := acme.Identifier{Type: acme.IdentifierDNS, Value: "example.com"}
		plain := newAuthz("authz-1", "acct-1", "example.com", false)
		wild := newAuthz("authz-2", "acct-1", "example.com", true)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1", plain, wild), []*acme.Authorization{plain, wild}))
		validate := func(id string) {
			t.Helper()
			_, err := s.UpdateAuthorization(ctx, id, func(a *acme.Authorization) error {
				a.Status = acme.StatusValid
				return nil
			})
			mustNot(t, "UpdateAuthorization "+id, err)
		}
		lookup := func(accountID string, ident acme.Identifier, wildcard bool) string {
			t.Helper()
			a, err := s.ValidAuthorization(ctx, accountID, ident, wildcard)
			if err != nil {
				mustBe(t, "ValidAuthorization", err, storage.ErrNotFound)
				return ""
			}
			if a.Status != acme.StatusValid {
				t.Fatalf("ValidAuthorization returned %s in status %s", a.ID, a.Status)
			}
			return a.ID
		}

		mustEqual(t, "before any is valid", lookup("acct-1", example, false), "")
		validate("authz-1")
		for _, tc := range []struct {
			name      string
			accountID string
			ident     acme.Identifier
			wildcard  bool
			want      string // "" for none
		}{
			{"same identifier", "acct-1", example, false, "authz-1"},
			{"wildcard is apart", "acct-1", example, true, ""},
			{"other account", "acct-2", example, false, ""},
			{"other name", "acct-1", acme.Identifier{Type: acme.IdentifierDNS, Value: "example.org"}, false, ""},
			{"other type", "acct-1", acme.Identifier{Type: acme.IdentifierIP, Value: "example.com"}, false, ""},
		} {
			mustEqual(t, tc.name, lookup(tc.accountID, tc.ident, tc.wildcard), tc.want)
		}

		later := newAuthz("authz-3", "acct-1", "example.com", false)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-2", "acct-1", later), []*acme.Authorization{later}))
		mustEqual(t, "while the later one is pending", lookup("acct-1", example, false), "authz-1")
		validate("authz-3")
		mustEqual(t, "the latest valid", lookup("acct-1", example, false), "authz-3")
		validate("authz-2")
		mustEqual(t, "wildcard once valid", lookup("acct-1", example, true), "authz-2")
	})
}
