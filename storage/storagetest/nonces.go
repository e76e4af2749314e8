package storagetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testNonces(t *testing.T, open func(*testing.T) storage.Store) {
	soon := func() time.Time { return time.Now().Add(time.Minute) }

	t.Run("spent once", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		for i, want := range []bool{true, false, false} {
			ok, err := s.ConsumeNonce(ctx, "n1", soon())
			mustNot(t, "ConsumeNonce", err)
			mustEqual(t, fmt.Sprintf("consume %d", i+1), ok, want)
		}
		ok, err := s.ConsumeNonce(ctx, "n2", soon())
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "another nonce", ok, true)
	})

	// The store's clock is near real time, so an expiry in the past has
	// passed for it too: such a nonce is refused and not recorded.
	t.Run("expired", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		ok, err := s.ConsumeNonce(ctx, "old", time.Now().Add(-time.Minute))
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "accepted", ok, false)
	})

	t.Run("no nonce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		ok, err := s.ConsumeNonce(ctx, "", soon())
		mustNot(t, "ConsumeNonce", err)
		mustEqual(t, "accepted", ok, false)
	})

	t.Run("with the account", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("nacct", "nk")))
		f, err := s.ConsumeNonceForAccount(ctx, "n1", soon(), "nacct", storage.Lookup{})
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "found", f, storage.Found{NonceOK: true, Account: newAccount("nacct", "nk")})
		f, err = s.ConsumeNonceForAccount(ctx, "n1", soon(), "nacct", storage.Lookup{})
		mustNot(t, "ConsumeNonceForAccount", err)
		mustEqual(t, "spent nonce accepted", f.NonceOK, false)
		// A nonce the caller found bad is not passed: the account is read
		// all the same.
		f, err = s.ConsumeNonceForAccount(ctx, "", soon(), "nacct", storage.Lookup{})
		mustNot(t, "ConsumeNonceForAccount without a nonce", err)
		mustEqual(t, "found", f, storage.Found{Account: newAccount("nacct", "nk")})
		_, err = s.ConsumeNonceForAccount(ctx, "n2", soon(), "nobody", storage.Lookup{OrderID: "order-1"})
		mustBe(t, "missing account", err, storage.ErrNotFound)
	})

	t.Run("with a lookup", func(t *testing.T) { testNonceLookup(t, open) })

	t.Run("racing consumers", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const racers = 20
		results := make(chan bool, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range racers {
			wg.Go(func() {
				<-start
				ok, err := s.ConsumeNonce(ctx, "n1", soon())
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

	t.Run("keys", func(t *testing.T) { testNonceKeys(t, open) })
}

// testNonceKeys: an epoch's key is the first candidate stored, for every
// caller however they race; reading without a candidate writes nothing.
func testNonceKeys(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	until := time.Now().Add(time.Hour)
	_, err := s.NonceKey(ctx, 7, nil, until)
	mustBe(t, "reading a missing key", err, storage.ErrNotFound)
	_, err = s.NonceKey(ctx, 7, nil, until)
	mustBe(t, "reading it again: the read stored nothing", err, storage.ErrNotFound)

	const racers = 20
	keys := make([][]byte, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			k, err := s.NonceKey(ctx, 7, bytes.Repeat([]byte{byte(i)}, 32), until)
			if err != nil {
				t.Errorf("NonceKey: %v", err)
			}
			keys[i] = k
		})
	}
	close(start)
	wg.Wait()
	first := keys[0]
	if len(first) != 32 {
		t.Fatalf("key %x: want one of the 32-byte candidates", first)
	}
	for i, k := range keys {
		mustEqual(t, fmt.Sprintf("key of racer %d", i), k, first)
	}
	k, err := s.NonceKey(ctx, 7, nil, until)
	mustNot(t, "NonceKey read", err)
	mustEqual(t, "key read back", k, first)

	other, err := s.NonceKey(ctx, 8, []byte("epoch eight"), until)
	mustNot(t, "NonceKey of another epoch", err)
	mustEqual(t, "key of another epoch", other, []byte("epoch eight"))
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
			expires := time.Now().Add(time.Minute)
			f, err := s.ConsumeNonceForAccount(ctx, tc.name, expires, "acct-1", tc.look)
			mustNot(t, "ConsumeNonceForAccount", err)
			mustEqual(t, "found", f, tc.want)
			f, err = s.ConsumeNonceForAccount(ctx, tc.name, expires, "acct-1", tc.look)
			mustNot(t, "ConsumeNonceForAccount with the nonce spent", err)
			mustEqual(t, "spent nonce accepted", f.NonceOK, false)
		})
	}
}
