package storagetest

import (
	"context"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

type abortError struct{}

func (*abortError) Error() string { return "fn refused" }

// testUpdateAbort checks that an error from fn comes back as the very
// value fn returned (callers match it with errors.As) and that nothing fn
// changed, indexes included, was written.
func testUpdateAbort(t *testing.T, open func(*testing.T) storage.Store) {
	for _, tc := range []struct {
		name string
		// abort seeds the store, then updates with an fn that changes the
		// resource and fails with boom.
		abort func(ctx context.Context, s storage.Store, boom error) error
		// check fails t if anything fn changed was stored.
		check func(t *testing.T, ctx context.Context, s storage.Store)
	}{
		{
			name: "account",
			abort: func(ctx context.Context, s storage.Store, boom error) error {
				if err := s.CreateAccount(ctx, newAccount("acct-1", "key-1")); err != nil {
					return err
				}
				_, err := s.UpdateAccount(ctx, "acct-1", func(a *acme.Account) error {
					a.Status, a.KeyThumbprint = acme.StatusDeactivated, "key-2"
					return boom
				})
				return err
			},
			check: func(t *testing.T, ctx context.Context, s storage.Store) {
				got, err := s.AccountByKey(ctx, "key-1")
				mustNot(t, "AccountByKey(old key)", err)
				mustEqual(t, "account", got, newAccount("acct-1", "key-1"))
				_, err = s.AccountByKey(ctx, "key-2")
				mustBe(t, "AccountByKey(new key)", err, storage.ErrNotFound)
			},
		},
		{
			name: "order",
			abort: func(ctx context.Context, s storage.Store, boom error) error {
				if err := s.CreateOrder(ctx, newOrder("order-1", "acct-1"), nil); err != nil {
					return err
				}
				_, err := s.UpdateOrder(ctx, "order-1", func(o *acme.Order) error {
					o.Status, o.CertSerial = acme.StatusValid, "abc"
					return boom
				})
				return err
			},
			check: func(t *testing.T, ctx context.Context, s storage.Store) {
				got, err := s.Order(ctx, "order-1")
				mustNot(t, "Order", err)
				mustEqual(t, "order", got, newOrder("order-1", "acct-1"))
			},
		},
		{
			name: "authorization",
			abort: func(ctx context.Context, s storage.Store, boom error) error {
				a := newAuthz("authz-1", "acct-1", "example.com", false)
				if err := s.CreateOrder(ctx, newOrder("order-1", "acct-1", a), []*acme.Authorization{a}); err != nil {
					return err
				}
				_, err := s.UpdateAuthorization(ctx, "authz-1", func(a *acme.Authorization) error {
					a.Status = acme.StatusValid
					return boom
				})
				return err
			},
			check: func(t *testing.T, ctx context.Context, s storage.Store) {
				got, err := s.Authorization(ctx, "authz-1")
				mustNot(t, "Authorization", err)
				mustEqual(t, "authorization", got, newAuthz("authz-1", "acct-1", "example.com", false))
				_, err = s.ValidAuthorization(ctx, "acct-1", got.Identifier, false)
				mustBe(t, "ValidAuthorization", err, storage.ErrNotFound)
			},
		},
		{
			name: "certificate",
			abort: func(ctx context.Context, s storage.Store, boom error) error {
				if err := s.PutCertificate(ctx, newCertificate("1a", "acct-1", "order-1")); err != nil {
					return err
				}
				_, err := s.UpdateCertificate(ctx, "1a", func(c *acme.Certificate) error {
					c.Revoked, c.Reason = true, 1
					return boom
				})
				return err
			},
			check: func(t *testing.T, ctx context.Context, s storage.Store) {
				got, err := s.Certificate(ctx, "1a")
				mustNot(t, "Certificate", err)
				mustEqual(t, "certificate", got, newCertificate("1a", "acct-1", "order-1"))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			boom := &abortError{}
			if err := tc.abort(ctx, s, boom); err != boom {
				t.Fatalf("update returned %v (%T), want fn's error value itself", err, err)
			}
			tc.check(t, ctx, s)
		})
	}
}
