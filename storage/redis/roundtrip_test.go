package redis_test

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// roundTrips counts commands and pipelines sent, each one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

func (r *roundTrips) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestRoundTrips pins how many round trips each operation costs with IDs
// as the authority makes them (storage.ScopedID), so a change that adds
// one shows up here. Each operation runs once unmeasured first, so scripts
// are loaded and a connection is open.
func TestRoundTrips(t *testing.T) {
	srv := redistest.Start(t)
	flush(t, client(t, srv.URL))
	var rt roundTrips
	s := open(t, srv.URL, redis.Config{Hook: &rt})
	ctx := t.Context()
	now := time.Now()
	ident := func(i int) acme.Identifier {
		return acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("h%d.example.com", i)}
	}
	newAuthz := func(id string, i int) *acme.Authorization {
		return &acme.Authorization{
			ID: id, AccountID: "acct1", Identifier: ident(i), Status: acme.StatusPending, Expires: now.Add(time.Hour),
			Challenges: []acme.Challenge{{ID: "c", Type: acme.ChallengeHTTP01, Token: "t", Status: acme.StatusPending}},
		}
	}
	// newOrder makes order i with two new authorizations.
	newOrder := func(i int) (*acme.Order, []*acme.Authorization) {
		a1 := newAuthz(storage.ScopedID("acct1", fmt.Sprintf("z%d-1", i)), 2*i)
		a2 := newAuthz(storage.ScopedID("acct1", fmt.Sprintf("z%d-2", i)), 2*i+1)
		return &acme.Order{
			ID: storage.ScopedID("acct1", fmt.Sprintf("o%d", i)), AccountID: "acct1", Status: acme.StatusPending,
			Identifiers: []acme.Identifier{a1.Identifier, a2.Identifier}, AuthzIDs: []string{a1.ID, a2.ID},
			Expires: now.Add(time.Hour), CreatedAt: now,
		}, []*acme.Authorization{a1, a2}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccount(ctx, &acme.Account{ID: "acct1", KeyThumbprint: "k0", Status: acme.StatusValid}))
	o, az := newOrder(0)
	must(s.CreateOrder(ctx, o, az))
	_, err := s.UpdateAuthorization(ctx, az[0].ID, func(a *acme.Authorization) error {
		a.Status = acme.StatusValid
		return nil
	})
	must(err)
	must(s.PutCertificate(ctx, &acme.Certificate{Serial: "1a", NotAfter: now.Add(time.Hour)}))

	for _, tc := range []struct {
		name string
		want int64
		// op is called with 1, then 2 (measured); it changes what it
		// updates each time, so no update is skipped as a no-op.
		op func(i int) error
	}{
		{"Ping", 1, func(int) error { return s.Ping(ctx) }},
		// Once per account, never per issuance: list the ID (the admin
		// API's index, another slot), write the account, claim its key.
		{"CreateAccount", 3, func(i int) error {
			return s.CreateAccount(ctx, &acme.Account{ID: fmt.Sprintf("acct-new-%d", i), KeyThumbprint: fmt.Sprintf("knew%d", i)})
		}},
		{"Account", 1, func(int) error { _, err := s.Account(ctx, "acct1"); return err }},
		{"AccountByKey", 2, func(int) error { _, err := s.AccountByKey(ctx, "k0"); return err }},
		{"UpdateAccount", 2, func(i int) error {
			_, err := s.UpdateAccount(ctx, "acct1", func(a *acme.Account) error {
				a.Contact = []string{fmt.Sprintf("mailto:%d@example.com", i)}
				return nil
			})
			return err
		}},
		// Read, claim the new key, write and drop the old key.
		{"UpdateAccount new key", 3, func(i int) error {
			_, err := s.UpdateAccount(ctx, fmt.Sprintf("acct-new-%d", i), func(a *acme.Account) error {
				a.KeyThumbprint = fmt.Sprintf("krekey%d", i)
				return nil
			})
			return err
		}},
		{"CreateOrder", 1, func(i int) error { o, az := newOrder(i); return s.CreateOrder(ctx, o, az) }},
		// new-order's limits ride in the create script, the name set's
		// (unscoped) too on a single server.
		{"CreateOrder with limits", 1, func(i int) error {
			o, az := newOrder(300 + i)
			hour := storage.Limit{Count: 1000, Period: time.Hour}
			return s.CreateOrder(ctx, o, az, storage.Limiting(now,
				storage.LimitCheck{Name: "orders", Key: "orders", Scope: "acct1", Limit: hour, Cost: 1},
				storage.LimitCheck{Name: "pending", Key: "pending", Scope: "acct1", Limit: hour, Cost: 2},
				storage.LimitCheck{Name: "set", Key: fmt.Sprintf("set%d", i), Limit: hour}))
		}},
		{"Order", 1, func(int) error { _, err := s.Order(ctx, o.ID); return err }},
		{"UpdateOrder", 2, func(i int) error {
			_, err := s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
				o.NotAfter = now.Add(time.Duration(i) * time.Hour)
				return nil
			})
			return err
		}},
		{"AccountOrders", 2, func(int) error { _, _, err := s.AccountOrders(ctx, "acct1", "", 10); return err }},
		{"Authorization", 1, func(int) error { _, err := s.Authorization(ctx, az[0].ID); return err }},
		{"Authorizations", 1, func(int) error { _, err := s.Authorizations(ctx, o.AuthzIDs); return err }},
		{"UpdateAuthorization", 2, func(i int) error {
			_, err := s.UpdateAuthorization(ctx, az[1].ID, func(a *acme.Authorization) error {
				a.Challenges[0].Validated = now.Add(time.Duration(i) * time.Second)
				return nil
			})
			return err
		}},
		{"UpdateAuthorization to valid", 2, func(i int) error {
			o, az := newOrder(100 + i)
			must(s.CreateOrder(ctx, o, az))
			rt.n.Store(0) // only the update counts
			_, err := s.UpdateAuthorization(ctx, az[0].ID, func(a *acme.Authorization) error {
				a.Status = acme.StatusValid
				return nil
			})
			return err
		}},
		{"ValidAuthorization", 2, func(int) error { _, err := s.ValidAuthorization(ctx, "acct1", ident(0), false); return err }},
		{"PutCertificate", 1, func(i int) error {
			return s.PutCertificate(ctx, &acme.Certificate{Serial: fmt.Sprintf("2%d", i), NotAfter: now.Add(time.Hour)})
		}},
		{"Certificate", 1, func(int) error { _, err := s.Certificate(ctx, "1a"); return err }},
		{"UpdateCertificate", 2, func(i int) error {
			_, err := s.UpdateCertificate(ctx, "1a", func(c *acme.Certificate) error {
				c.Revoked, c.Reason = true, i
				return nil
			})
			return err
		}},
		{"NonceKey", 1, func(i int) error {
			_, err := s.NonceKey(ctx, uint32(i), []byte("key"), now.Add(time.Hour))
			return err
		}},
		{"NonceKey read", 1, func(i int) error { _, err := s.NonceKey(ctx, uint32(i), nil, time.Time{}); return err }},
		{"ConsumeNonce", 1, func(i int) error {
			_, err := s.ConsumeNonce(ctx, fmt.Sprint(i), now.Add(time.Minute))
			return err
		}},
		{"ConsumeNonceForAccount with lookup", 1, func(i int) error {
			_, err := s.ConsumeNonceForAccount(ctx, fmt.Sprint(i), now.Add(time.Minute), "acct1",
				storage.Lookup{OrderID: o.ID, AuthzID: az[0].ID, Serial: "1a", KeyHash: "kh"})
			return err
		}},
		{"BlockKey", 1, func(i int) error {
			return s.BlockKey(ctx, storage.BlockedKey{Hash: fmt.Sprint("kh", i), Serial: "1a", At: now})
		}},
		{"BlockedKey", 1, func(int) error {
			_, err := s.BlockedKey(ctx, "kh1")
			return err
		}},
		{"UpdateCertificate blocking its key", 2, func(i int) error {
			_, err := s.UpdateCertificate(ctx, "1a", func(c *acme.Certificate) error {
				c.Revoked, c.Reason = true, 100+i
				return nil
			}, storage.BlockingKey(storage.BlockedKey{Hash: fmt.Sprint("kc", i), Serial: "1a", At: now}))
			return err
		}},
		// The hot path: updates that start from the copy the request read,
		// queueing or finishing a job (and storing a certificate) in the
		// same script.
		{"UpdateAuthorization from a copy, queueing", 1, func(i int) error {
			cur, err := s.Authorization(ctx, az[1].ID)
			must(err)
			rt.n.Store(0)
			var claim storage.Claim
			_, err = s.UpdateAuthorization(ctx, az[1].ID, func(a *acme.Authorization) error {
				a.Challenges[0].Validated = now.Add(time.Duration(i) * time.Minute)
				return nil
			}, storage.From(cur), storage.Queue(storage.Job{AuthzID: az[1].ID, ChallengeID: "c"}, &claim))
			if err == nil && claim.ID == "" {
				t.Error("no claim")
			}
			return err
		}},
		{"UpdateOrder from a copy, finishing, with a certificate", 1, func(i int) error {
			var claim storage.Claim
			cur, err := s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
				o.NotBefore = now.Add(time.Duration(i) * time.Hour)
				return nil
			}, storage.Queue(storage.Job{OrderID: o.ID}, &claim))
			must(err)
			rt.n.Store(0)
			_, err = s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
				o.NotAfter = now.Add(time.Duration(i) * time.Minute)
				return nil
			}, storage.From(cur), storage.Finishing(claim),
				storage.WithCertificate(&acme.Certificate{Serial: fmt.Sprintf("3%d", i), NotAfter: now.Add(time.Hour)}))
			return err
		}},
		{"Finish", 1, func(int) error { return s.Finish(ctx, storage.Claim{ID: "1-1"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			must(tc.op(1))
			rt.n.Store(0)
			must(tc.op(2))
			if got := rt.n.Load(); got != tc.want {
				t.Errorf("%s: %d round trips, want %d", tc.name, got, tc.want)
			}
		})
	}
}
