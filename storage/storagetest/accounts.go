package storagetest

import (
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testAccounts(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("create and get", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		want := newAccount("acct-1", "key-1")
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, want))

		got, err := s.Account(ctx, "acct-1")
		mustNot(t, "Account", err)
		mustEqual(t, "Account", got, want)
		got, err = s.AccountByKey(ctx, "key-1")
		mustNot(t, "AccountByKey", err)
		mustEqual(t, "AccountByKey", got, want)
	})

	t.Run("not found", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.Account(ctx, "acct-1")
		mustBe(t, "Account", err, storage.ErrNotFound)
		_, err = s.AccountByKey(ctx, "key-1")
		mustBe(t, "AccountByKey", err, storage.ErrNotFound)
		_, err = s.UpdateAccount(ctx, "acct-1", func(*acme.Account) error {
			t.Error("fn called for a missing account")
			return nil
		})
		mustBe(t, "UpdateAccount", err, storage.ErrNotFound)
	})

	t.Run("taken key or ID conflicts", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			second *acme.Account
		}{
			{"same key", newAccount("acct-2", "key-1")},
			{"same ID", newAccount("acct-1", "key-2")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				s, ctx := open(t), t.Context()
				first := newAccount("acct-1", "key-1")
				mustNot(t, "CreateAccount", s.CreateAccount(ctx, first))
				mustBe(t, "second CreateAccount", s.CreateAccount(ctx, tc.second), storage.ErrConflict)

				got, err := s.AccountByKey(ctx, "key-1")
				mustNot(t, "AccountByKey", err)
				mustEqual(t, "first account", got, first)
				_, err = s.Account(ctx, "acct-2")
				mustBe(t, "Account of the rejected ID", err, storage.ErrNotFound)
				_, err = s.AccountByKey(ctx, "key-2")
				mustBe(t, "AccountByKey of the rejected key", err, storage.ErrNotFound)
			})
		}
	})

	t.Run("update", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("acct-1", "key-1")))
		want := newAccount("acct-1", "key-1")
		want.Contact = []string{"mailto:new@example.com"}
		got, err := s.UpdateAccount(ctx, "acct-1", func(a *acme.Account) error {
			a.Contact = []string{"mailto:new@example.com"}
			return nil
		})
		mustNot(t, "UpdateAccount", err)
		mustEqual(t, "UpdateAccount result", got, want)
		got, err = s.AccountByKey(ctx, "key-1")
		mustNot(t, "AccountByKey", err)
		mustEqual(t, "stored account", got, want)
	})

	t.Run("key change moves the index", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("acct-1", "key-1")))
		other := newAccount("acct-2", "key-2")
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, other))
		rekey := func(to string) error {
			_, err := s.UpdateAccount(ctx, "acct-1", func(a *acme.Account) error {
				a.KeyThumbprint = to
				return nil
			})
			return err
		}

		mustNot(t, "rekey to a free key", rekey("key-3"))
		got, err := s.AccountByKey(ctx, "key-3")
		mustNot(t, "AccountByKey(new key)", err)
		mustEqual(t, "account under the new key", got.ID, "acct-1")
		_, err = s.AccountByKey(ctx, "key-1")
		mustBe(t, "AccountByKey(old key)", err, storage.ErrNotFound)

		mustBe(t, "rekey to another account's key", rekey("key-2"), storage.ErrConflict)
		got, err = s.Account(ctx, "acct-1")
		mustNot(t, "Account", err)
		mustEqual(t, "key after the conflict", got.KeyThumbprint, "key-3")
		got, err = s.AccountByKey(ctx, "key-2")
		mustNot(t, "AccountByKey(other key)", err)
		mustEqual(t, "other account", got, other)
		got, err = s.AccountByKey(ctx, "key-3")
		mustNot(t, "AccountByKey(kept key)", err)
		mustEqual(t, "account under the kept key", got.ID, "acct-1")
	})
}
