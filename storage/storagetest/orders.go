package storagetest

import (
	"fmt"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testOrders(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("create and get", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a1 := newAuthz("authz-1", "acct-1", "example.com", false)
		a2 := newAuthz("authz-2", "acct-1", "example.com", true)
		want := newOrder("order-1", "acct-1", a1, a2)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, want, []*acme.Authorization{a1, a2}))

		got, err := s.Order(ctx, "order-1")
		mustNot(t, "Order", err)
		mustEqual(t, "Order", got, want)
		one, err := s.Authorization(ctx, "authz-1")
		mustNot(t, "Authorization", err)
		mustEqual(t, "Authorization", one, a1)
		list, err := s.Authorizations(ctx, []string{"authz-2", "authz-1"})
		mustNot(t, "Authorizations", err)
		mustEqual(t, "Authorizations in the order asked", list, []*acme.Authorization{a2, a1})
	})

	t.Run("not found", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := newAuthz("authz-1", "acct-1", "example.com", false)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1", a), []*acme.Authorization{a}))

		_, err := s.Order(ctx, "order-2")
		mustBe(t, "Order", err, storage.ErrNotFound)
		_, err = s.Authorization(ctx, "authz-2")
		mustBe(t, "Authorization", err, storage.ErrNotFound)
		_, err = s.Authorizations(ctx, []string{"authz-1", "authz-2"})
		mustBe(t, "Authorizations with one missing", err, storage.ErrNotFound)
		_, err = s.UpdateOrder(ctx, "order-2", func(*acme.Order) error { return nil })
		mustBe(t, "UpdateOrder", err, storage.ErrNotFound)
		_, err = s.UpdateAuthorization(ctx, "authz-2", func(*acme.Authorization) error { return nil })
		mustBe(t, "UpdateAuthorization", err, storage.ErrNotFound)
	})

	t.Run("duplicate ID conflicts and writes nothing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a1 := newAuthz("authz-1", "acct-1", "example.com", false)
		first := newOrder("order-1", "acct-1", a1)
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, first, []*acme.Authorization{a1}))
		a2 := newAuthz("authz-2", "acct-1", "example.org", false)
		mustBe(t, "second CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1", a2), []*acme.Authorization{a2}), storage.ErrConflict)

		got, err := s.Order(ctx, "order-1")
		mustNot(t, "Order", err)
		mustEqual(t, "first order", got, first)
		_, err = s.Authorization(ctx, "authz-2")
		mustBe(t, "authorization of the rejected order", err, storage.ErrNotFound)
		ids, _, err := s.AccountOrders(ctx, "acct-1", "", 10)
		mustNot(t, "AccountOrders", err)
		mustEqual(t, "account's orders", ids, []string{"order-1"})
	})

	t.Run("update", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1"), nil))
		want := newOrder("order-1", "acct-1")
		want.Status, want.CertSerial = acme.StatusValid, "1a"
		want.Error = &acme.Problem{Type: "urn:ietf:params:acme:error:serverInternal", Detail: "kept", Status: 500}
		got, err := s.UpdateOrder(ctx, "order-1", func(o *acme.Order) error {
			o.Status, o.CertSerial, o.Error = want.Status, want.CertSerial, want.Error
			return nil
		})
		mustNot(t, "UpdateOrder", err)
		mustEqual(t, "UpdateOrder result", got, want)
		got, err = s.Order(ctx, "order-1")
		mustNot(t, "Order", err)
		mustEqual(t, "stored order", got, want)
	})
}

func testAccountOrders(t *testing.T, open func(*testing.T) storage.Store) {
	for _, tc := range []struct {
		orders, limit int
		pages         []int // sizes; every page but the last has a next cursor
	}{
		{orders: 7, limit: 3, pages: []int{3, 3, 1}},
		{orders: 6, limit: 3, pages: []int{3, 3}},
		{orders: 2, limit: 10, pages: []int{2}},
		{orders: 1, limit: 1, pages: []int{1}},
		{orders: 0, limit: 3, pages: []int{0}},
	} {
		t.Run(fmt.Sprintf("%d orders by %d", tc.orders, tc.limit), func(t *testing.T) {
			s, ctx := open(t), t.Context()
			var want []string
			for i := range tc.orders {
				// Another account's orders in between must not show up.
				id := fmt.Sprintf("order-a-%d", i)
				mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder(id, "acct-a"), nil))
				mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder(fmt.Sprintf("order-b-%d", i), "acct-b"), nil))
				want = append(want, id)
			}

			var got []string
			cursor := ""
			for i, size := range tc.pages {
				ids, next, err := s.AccountOrders(ctx, "acct-a", cursor, tc.limit)
				mustNot(t, fmt.Sprintf("page %d", i), err)
				if len(ids) != size {
					t.Fatalf("page %d: %d orders %v, want %d", i, len(ids), ids, size)
				}
				last := i == len(tc.pages)-1
				if last != (next == "") {
					t.Fatalf("page %d of %d: next cursor %q", i+1, len(tc.pages), next)
				}
				got = append(got, ids...)
				cursor = next
			}
			if len(want) > 0 {
				mustEqual(t, "orders, oldest first", got, want)
			}
		})
	}
}
