package storagetest

import (
	"errors"
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
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, &acme.Account{ID: "nacct", KeyThumbprint: "nk", Status: acme.StatusValid}))
		mustNot(t, "PutNonce", s.PutNonce(ctx, "n1", time.Now().Add(time.Minute)))
		ok, acct, err := s.ConsumeNonceForAccount(ctx, "n1", "n2", time.Now().Add(time.Minute), "nacct")
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "nonce accepted", ok, true)
		mustEqual(t, "account", acct.ID, "nacct")
		ok, _, err = s.ConsumeNonceForAccount(ctx, "n1", "", time.Time{}, "nacct")
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "spent nonce accepted", ok, false)
		_, _, err = s.ConsumeNonceForAccount(ctx, "n2", "", time.Time{}, "nobody")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("missing account: %v, want ErrNotFound", err)
		}
	})

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
