package storagetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testNonces(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("accepted once", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "PutNonce", s.PutNonce(ctx, "n1", time.Now().Add(time.Minute)))
		for i, want := range []bool{true, false} {
			ok, err := s.ConsumeNonce(ctx, "n1", "", time.Time{})
			mustNot(t, "ConsumeNonce", err)
			mustEqual(t, fmt.Sprintf("consume %d", i+1), ok, want)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		ok, err := s.ConsumeNonce(ctx, "never-issued", "", time.Time{})
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "accepted", ok, false)
	})

	// The store's clock is near real time, so an expiry in the past has
	// passed for it too. Putting one is not an error: it just never counts.
	t.Run("expired", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "PutNonce", s.PutNonce(ctx, "old", time.Now().Add(-time.Minute)))
		ok, err := s.ConsumeNonce(ctx, "old", "", time.Time{})
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "accepted", ok, false)
	})

	t.Run("consume keeps the next nonce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		ok, err := s.ConsumeNonce(ctx, "spent", "fresh", time.Now().Add(time.Minute))
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "unknown nonce accepted", ok, false)
		ok, err = s.ConsumeNonce(ctx, "fresh", "", time.Time{})
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "next nonce accepted", ok, true)
	})

	t.Run("with the account", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("nacct", "nk")))
		mustNot(t, "PutNonce", s.PutNonce(ctx, "n1", time.Now().Add(time.Minute)))
		f, err := s.ConsumeNonceForAccount(ctx, "n1", "n2", time.Now().Add(time.Minute), "nacct", storage.Lookup{})
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "found", f, storage.Found{NonceOK: true, Account: newAccount("nacct", "nk")})
		f, err = s.ConsumeNonceForAccount(ctx, "n1", "", time.Time{}, "nacct", storage.Lookup{})
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "spent nonce accepted", f.NonceOK, false)
		_, err = s.ConsumeNonceForAccount(ctx, "n2", "", time.Time{}, "nobody", storage.Lookup{OrderID: "order-1"})
		mustBe(t, "missing account", err, storage.ErrNotFound)
	})

	t.Run("with a lookup", func(t *testing.T) { testNonceLookup(t, open) })

	t.Run("racing consumers", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "PutNonce", s.PutNonce(ctx, "n1", time.Now().Add(time.Minute)))
		const racers = 20
		results := make(chan bool, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				<-start
				ok, err := s.ConsumeNonce(ctx, "n1", "", time.Time{})
				if err != nil {
					t.Errorf("ConsumeNonce: %v", err)
				}
				results <- ok
			})
		}
		close(start)
		wg.Wait()
		close(results)
		accepted := 0
		for ok := range results {
			if ok {
				accepted++
			}
		}
		mustEqual(t, "consumers that got the nonce", accepted, 1)
	})
}

// testNonceLookup: the resources a Lookup names come back as stored, and
// those missing as nil.
func testNonceLookup(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	acct := newAccount("acct-1", "key-1")
	authz := newAuthz("authz-1", "acct-1", "example.com", false)
	order := newOrder("order-1", "acct-1", authz)
	cert := newCertificate("1a", "acct-1", "order-1")
	mustNot(t, "CreateAccount", s.CreateAccount(ctx, acct))
	mustNot(t, "CreateOrder", s.CreateOrder(ctx, order, []*acme.Authorization{authz}))
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, cert))

	for _, tc := range []struct {
		name string
		look storage.Lookup
		want storage.Found
	}{
		{"all three", storage.Lookup{OrderID: "order-1", AuthzID: "authz-1", Serial: "1a"},
			storage.Found{NonceOK: true, Account: acct, Order: order, Authz: authz, Certificate: cert}},
		{"one", storage.Lookup{AuthzID: "authz-1"}, storage.Found{NonceOK: true, Account: acct, Authz: authz}},
		{"none", storage.Lookup{}, storage.Found{NonceOK: true, Account: acct}},
		{"missing ones", storage.Lookup{OrderID: "order-9", AuthzID: "authz-9", Serial: "9f"},
			storage.Found{NonceOK: true, Account: acct}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustNot(t, "PutNonce", s.PutNonce(ctx, tc.name, time.Now().Add(time.Minute)))
			f, err := s.ConsumeNonceForAccount(ctx, tc.name, "", time.Time{}, "acct-1", tc.look)
			mustNot(t, "ConsumeNonceForAccount", err)
			mustEqual(t, "found", f, tc.want)
			f, err = s.ConsumeNonceForAccount(ctx, tc.name, "", time.Time{}, "acct-1", tc.look)
			mustNot(t, "ConsumeNonceForAccount with the nonce spent", err)
			mustEqual(t, "spent nonce accepted", f.NonceOK, false)
		})
	}
}
