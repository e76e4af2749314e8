package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// RunLimiter is the suite every storage.Limiter passes. Time is the
// suite's: each call passes its own now, so nothing waits.
func RunLimiter(t *testing.T, open func(t *testing.T) storage.Limiter) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, l storage.Limiter)
	}{
		{"BurstThenRefill", testLimitBurst},
		{"AllOrNothing", testLimitAllOrNothing},
		{"ProbeSpendsNothing", testLimitProbe},
		{"KeysAndScopesApart", testLimitApart},
		{"Off", testLimitOff},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open(t)) })
	}
}

var limitEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func limit(t *testing.T, l storage.Limiter, at time.Duration, checks ...storage.LimitCheck) storage.LimitDecision {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := l.Limit(ctx, limitEpoch.Add(at), checks)
	if err != nil {
		t.Fatalf("Limit: %v", err)
	}
	return d
}

func check(name, scope string, count int64, period time.Duration, cost int64) storage.LimitCheck {
	return storage.LimitCheck{Name: name, Key: name + ":k", Scope: scope, Limit: storage.Limit{Count: count, Period: period}, Cost: cost}
}

func mustRefuse(t *testing.T, d storage.LimitDecision, name string, retry time.Duration) {
	t.Helper()
	if d.Allowed || d.Refused != name || d.RetryAfter != retry {
		t.Fatalf("decision %+v, want %s refused with retry %v", d, name, retry)
	}
}

func mustAllow(t *testing.T, d storage.LimitDecision) {
	t.Helper()
	if !d.Allowed {
		t.Fatalf("decision %+v, want allowed", d)
	}
}

func testLimitBurst(t *testing.T, l storage.Limiter) {
	c := check("burst", "acct1", 3, 30*time.Second, 1) // one every 10s
	for i := range 3 {
		if d := limit(t, l, 0, c); !d.Allowed {
			t.Fatalf("request %d of the burst refused: %+v", i+1, d)
		}
	}
	mustRefuse(t, limit(t, l, 0, c), "burst", 10*time.Second)
	mustRefuse(t, limit(t, l, 4*time.Second, c), "burst", 6*time.Second)
	mustAllow(t, limit(t, l, 10*time.Second, c))
	mustRefuse(t, limit(t, l, 10*time.Second, c), "burst", 10*time.Second)
	// Long idle: the full burst again, and no more.
	for range 3 {
		mustAllow(t, limit(t, l, time.Hour, c))
	}
	mustRefuse(t, limit(t, l, time.Hour, c), "burst", 10*time.Second)
}

func testLimitAllOrNothing(t *testing.T, l storage.Limiter) {
	wide := check("wide", "acct1", 10, time.Minute, 1)
	narrow := check("narrow", "acct1", 1, time.Minute, 1)
	mustAllow(t, limit(t, l, 0, wide, narrow))
	mustRefuse(t, limit(t, l, 0, wide, narrow), "narrow", time.Minute)
	// The refused call spent nothing of wide: 9 are left of its burst.
	for i := range 9 {
		if d := limit(t, l, 0, wide); !d.Allowed {
			t.Fatalf("wide request %d refused: %+v", i+2, d)
		}
	}
	mustRefuse(t, limit(t, l, 0, wide), "wide", 6*time.Second)
	// A cost larger than what is left is refused as a whole.
	big := check("big", "acct1", 5, 50*time.Second, 4)
	mustAllow(t, limit(t, l, 0, big))
	big.Cost = 2
	mustRefuse(t, limit(t, l, 0, big), "big", 10*time.Second)
	big.Cost = 1
	mustAllow(t, limit(t, l, 0, big))
}

func testLimitProbe(t *testing.T, l storage.Limiter) {
	c := check("probe", "acct1", 2, 20*time.Second, 0)
	for range 5 {
		mustAllow(t, limit(t, l, 0, c))
	}
	c.Cost = 2
	mustAllow(t, limit(t, l, 0, c))
	c.Cost = 0
	mustRefuse(t, limit(t, l, 0, c), "probe", 10*time.Second)
}

func testLimitApart(t *testing.T, l storage.Limiter) {
	a := check("one", "acct1", 1, time.Minute, 1)
	b := check("one", "acct2", 1, time.Minute, 1)
	global := check("one", "", 1, time.Minute, 1)
	other := storage.LimitCheck{Name: "one", Key: "other", Limit: a.Limit, Cost: 1}
	for _, c := range []storage.LimitCheck{a, b, global, other} {
		mustAllow(t, limit(t, l, 0, c))
	}
	for _, c := range []storage.LimitCheck{a, b, global, other} {
		mustRefuse(t, limit(t, l, 0, c), "one", time.Minute)
	}
	// Checks of several scopes in one call: each is decided.
	mustRefuse(t, limit(t, l, 0, check("fresh", "acct3", 1, time.Minute, 1), global), "one", time.Minute)
	mustAllow(t, limit(t, l, time.Minute, a, b, global))
}

func testLimitOff(t *testing.T, l storage.Limiter) {
	off := check("off", "acct1", 0, time.Minute, 1)
	for range 3 {
		mustAllow(t, limit(t, l, 0, off))
	}
	mustAllow(t, limit(t, l, 0))
}

// LimitedStore is a backend that is its own Limiter, as both are.
type LimitedStore interface {
	storage.Store
	storage.Limiter
}

// RunSpending checks storage.Spending: counts spent with an update's
// write, only when it writes, given back by a negative cost, and seen by
// the Limiter.
func RunSpending(t *testing.T, open func(t *testing.T) LimitedStore) {
	s := open(t)
	ctx := t.Context()
	acct := "acctS"
	az := newAuthz(storage.ScopedID(acct, "az1"), acct, "spend.example", false)
	if err := s.CreateOrder(ctx, newOrder(storage.ScopedID(acct, "o1"), acct, az), []*acme.Authorization{az}); err != nil {
		t.Fatal(err)
	}
	pending := check("pending", acct, 1, time.Hour, 0)
	// A check of no scope lies in another Cluster slot than the write.
	global := check("global", "", 1, time.Hour, 0)
	spend := func(cost int64, change bool) {
		t.Helper()
		c, g := pending, global
		c.Cost, g.Cost = cost, cost
		_, err := s.UpdateAuthorization(ctx, az.ID, func(a *acme.Authorization) error {
			if change {
				a.Expires = a.Expires.Add(time.Second)
			}
			return nil
		}, storage.Spending(limitEpoch, c, g))
		if err != nil {
			t.Fatalf("UpdateAuthorization: %v", err)
		}
	}
	mustAllow(t, limit(t, s, 0, pending))
	spend(1, false) // writes nothing: spends nothing
	mustAllow(t, limit(t, s, 0, pending))
	spend(1, true)
	mustRefuse(t, limit(t, s, 0, pending), "pending", time.Hour)
	mustRefuse(t, limit(t, s, 0, global), "global", time.Hour)
	spend(1, true) // over the limit: counted all the same
	mustRefuse(t, limit(t, s, 0, pending), "pending", 2*time.Hour)
	spend(-2, true) // given back
	mustAllow(t, limit(t, s, 0, pending))
	spend(-5, true) // never below empty
	pending.Cost = 1
	mustAllow(t, limit(t, s, 0, pending))
	pending.Cost = 0
	mustRefuse(t, limit(t, s, 0, pending), "pending", time.Hour)
}

// RunCreateLimits checks storage.Limiting on CreateOrder: a refusal is a
// *storage.LimitError naming the check, with nothing written or spent;
// an order created spends its checks; one not created (a conflict)
// spends nothing.
func RunCreateLimits(t *testing.T, open func(t *testing.T) LimitedStore) {
	s := open(t)
	ctx := t.Context()
	acct := "acctC"
	pending := check("pending", acct, 2, time.Hour, 1)
	global := check("global", "", 1, time.Hour, 0) // another Cluster slot
	create := func(name string, checks ...storage.LimitCheck) error {
		t.Helper()
		az := newAuthz(storage.ScopedID(acct, "az-"+name), acct, name+".example", false)
		return s.CreateOrder(ctx, newOrder(storage.ScopedID(acct, name), acct, az), []*acme.Authorization{az},
			storage.Limiting(limitEpoch, checks...))
	}
	refused := func(err error, name string, retry time.Duration, order string) {
		t.Helper()
		var le *storage.LimitError
		if !errors.As(err, &le) || le.Name != name || le.RetryAfter != retry {
			t.Fatalf("CreateOrder: %v, want %s refused with retry %v", err, name, retry)
		}
		if _, err := s.Order(ctx, storage.ScopedID(acct, order)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused order: %v, want not found", err)
		}
		if _, err := s.Authorization(ctx, storage.ScopedID(acct, "az-"+order)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("refused order's authorization: %v, want not found", err)
		}
	}
	if err := create("o1", pending, global); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	if _, err := s.Order(ctx, storage.ScopedID(acct, "o1")); err != nil {
		t.Fatalf("created order: %v", err)
	}
	two := pending
	two.Cost = 2
	refused(create("o2", two), "pending", 30*time.Minute, "o2")

	globalSpend := global
	globalSpend.Cost = 1
	mustAllow(t, limit(t, s, 0, globalSpend))
	refused(create("o3", pending, global), "global", time.Hour, "o3")
	if err := create("o4", pending); err != nil { // o3 spent nothing
		t.Fatalf("CreateOrder: %v", err)
	}
	probe := pending
	probe.Cost = 0
	mustRefuse(t, limit(t, s, 0, probe), "pending", 30*time.Minute)

	orders := check("orders", acct, 1, time.Hour, 1)
	mustBe(t, "CreateOrder of a taken ID", create("o1", orders), storage.ErrConflict)
	orders.Cost = 0
	mustAllow(t, limit(t, s, 0, orders)) // the conflict spent nothing
}
