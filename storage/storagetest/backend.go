package storagetest

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Backend is a store under the suite's control, for the parts of the
// suite that need more than a fresh store: a clock, expiry, and another
// replica or run on the same data.
type Backend struct {
	// Open returns a fresh, empty store on the clock now that keeps
	// resources by r, and closes it with t.Cleanup.
	Open func(t *testing.T, now func() time.Time, r storage.Retention) storage.Store
	// Expire makes s drop what it would have dropped by now, for records
	// all written at written (both by s's clock, which reads now when
	// Expire is called): a sweep, or in Redis the expiry of every key
	// whose TTL, set at written, has run out by now.
	Expire func(t *testing.T, s storage.Store, written, now time.Time)
	// Reopen returns a store on s's data as another replica, or the next
	// run, sees it, whose Consume hands out at once every claim s left
	// unfinished. It may close s.
	Reopen func(t *testing.T, s storage.Store) storage.Store
}

// RunBackend runs the parts of the suite that need a Backend.
func RunBackend(t *testing.T, b Backend) {
	t.Run("Retention", func(t *testing.T) { testRetention(t, b) })
	t.Run("ProcessingHasJob", func(t *testing.T) { testProcessingHasJob(t, b) })
	t.Run("BlockedKeysShared", func(t *testing.T) { testBlockedKeysShared(t, b) })
}

// clock is a test clock that moves only when set.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// testRetention: every kind of resource, in every status that changes its
// fate, is readable just before the time storage.Retention gives and gone
// just after; accounts stay. All is written at t0; then the clock jumps
// from deadline to deadline.
func testRetention(t *testing.T, b Backend) {
	const margin = time.Minute
	t0 := createdAt()
	clk := &clock{now: t0}
	keep := storage.Retention{Finished: 72 * time.Hour, Grace: 2 * time.Hour}
	s := b.Open(t, clk.Now, keep)
	ctx := t.Context()
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

	mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("acct-r", "thumb-r")))
	order := func(id string, expires time.Time, authzs ...*acme.Authorization) {
		t.Helper()
		o := newOrder(id, "acct-r", authzs...)
		o.Expires = expires
		mustNot(t, "CreateOrder "+id, s.CreateOrder(ctx, o, authzs))
	}
	authz := func(id string, expires time.Time) *acme.Authorization {
		a := newAuthz(id, "acct-r", id+".example", false)
		a.Expires = expires
		return a
	}
	setOrder := func(id string, st acme.Status) {
		t.Helper()
		_, err := s.UpdateOrder(ctx, id, func(o *acme.Order) error { o.Status = st; return nil })
		mustNot(t, "UpdateOrder "+id, err)
	}
	setAuthz := func(id string, st acme.Status, expires time.Time) {
		t.Helper()
		_, err := s.UpdateAuthorization(ctx, id, func(a *acme.Authorization) error {
			a.Status, a.Expires = st, expires
			return nil
		})
		mustNot(t, "UpdateAuthorization "+id, err)
	}

	// pending: order and authorization kept Grace past Expires.
	order("ord-pending", at(10), authz("az-pending", at(10)))
	// invalid: the same.
	order("ord-invalid", at(20), authz("az-invalid", at(20)))
	setAuthz("az-invalid", acme.StatusInvalid, at(20))
	setOrder("ord-invalid", acme.StatusInvalid)
	// valid: the order Finished past Expires; its authorization, valid
	// until 40h, would go at 42h but is kept as long as the order.
	order("ord-valid", at(30), authz("az-valid", at(30)))
	setAuthz("az-valid", acme.StatusValid, at(40))
	setOrder("ord-valid", acme.StatusValid)
	// an authorization outliving the pending order that lists it.
	order("ord-short", at(5), authz("az-long", at(5)))
	setAuthz("az-long", acme.StatusValid, at(50))
	// certificates: Finished past NotAfter, revoked or not.
	cert := newCertificate("serial-r", "acct-r", "ord-valid")
	cert.NotAfter = at(60)
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, cert))
	revoked := newCertificate("serial-revoked", "acct-r", "ord-valid")
	revoked.NotAfter = at(80)
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, revoked))
	_, err := s.UpdateCertificate(ctx, revoked.Serial, func(c *acme.Certificate) error {
		return acme.Revoke(c, 1, t0)
	})
	mustNot(t, "UpdateCertificate", err)

	type kept struct {
		what  string
		until time.Time
		read  func() error
	}
	readOrder := func(id string) func() error {
		return func() error { _, err := s.Order(ctx, id); return err }
	}
	readAuthz := func(id string) func() error {
		return func() error { _, err := s.Authorization(ctx, id); return err }
	}
	readCert := func(serial string) func() error {
		return func() error { _, err := s.Certificate(ctx, serial); return err }
	}
	all := []kept{
		{"pending order", at(12), readOrder("ord-pending")},
		{"pending authorization", at(12), readAuthz("az-pending")},
		{"pending order listing a longer-lived authorization", at(7), readOrder("ord-short")},
		{"valid authorization on a pending order", at(52), readAuthz("az-long")},
		{"invalid order", at(22), readOrder("ord-invalid")},
		{"invalid authorization", at(22), readAuthz("az-invalid")},
		{"valid order", at(102), readOrder("ord-valid")},
		{"valid authorization on a valid order", at(102), readAuthz("az-valid")},
		{"certificate", at(132), readCert("serial-r")},
		{"revoked certificate", at(152), readCert("serial-revoked")},
	}
	// Each is checked against the one rule, so a change of either the
	// rule or a backend that parts them fails here.
	for _, k := range []struct {
		name string
		got  time.Time
		want time.Time
	}{
		{"ord-valid", keep.OrderUntil(&acme.Order{Status: acme.StatusValid, Expires: at(30)}), at(102)},
		{"ord-invalid", keep.OrderUntil(&acme.Order{Status: acme.StatusInvalid, Expires: at(20)}), at(22)},
		{"az-long", keep.AuthorizationUntil(&acme.Authorization{Status: acme.StatusValid, Expires: at(50)}), at(52)},
		{"serial-r", keep.CertificateUntil(cert), at(132)},
	} {
		mustEqual(t, "storage.Retention for "+k.name, k.got, k.want)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].until.Before(all[j].until) })

	expireAt := func(now time.Time) {
		t.Helper()
		clk.set(now)
		b.Expire(t, s, t0, now)
	}
	for i := 0; i < len(all); {
		until := all[i].until
		expireAt(until.Add(-margin))
		for _, k := range all[i:] {
			if err := k.read(); err != nil {
				t.Errorf("%s, kept until +%v: gone at +%v: %v", k.what, k.until.Sub(t0), until.Add(-margin).Sub(t0), err)
			}
		}
		expireAt(until.Add(margin))
		for ; i < len(all) && all[i].until.Equal(until); i++ {
			if err := all[i].read(); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s, kept until +%v: at +%v read gives %v, want gone", all[i].what, until.Sub(t0), until.Add(margin).Sub(t0), err)
			}
		}
	}
	expireAt(at(10_000))
	if _, err := s.Account(ctx, "acct-r"); err != nil {
		t.Errorf("account gone after 10,000h: %v", err)
	}
	if _, err := s.AccountByKey(ctx, "thumb-r"); err != nil {
		t.Errorf("account's key gone after 10,000h: %v", err)
	}
}

// testProcessingHasJob: a resource moved to processing always has a job,
// and an update that loses its race leaves none behind. The writer of
// each "dies" after its update, never finishing its claim; another
// replica, or the next run, is handed exactly the jobs of the writes that
// stood, and finds their resource processing.
func testProcessingHasJob(t *testing.T, b Backend) {
	s := b.Open(t, time.Now, storage.Retention{})
	ctx := t.Context()
	seedUpdatable(t, ctx, s)
	errAlready := errors.New("already processing")
	staleAuthz, err := s.Authorization(ctx, "authz-1")
	mustNot(t, "Authorization", err)
	staleOrder, err := s.Order(ctx, "order-1")
	mustNot(t, "Order", err)
	startAuthz := func(a *acme.Authorization) error {
		if a.Challenges[0].Status == acme.StatusProcessing {
			return errAlready
		}
		a.Challenges[0].Status = acme.StatusProcessing
		return nil
	}
	startOrder := func(o *acme.Order) error {
		if o.Status == acme.StatusProcessing {
			return errAlready
		}
		o.Status = acme.StatusProcessing
		return nil
	}
	wonAuthz := storage.Job{AuthzID: "authz-1", ChallengeID: "authz-1-http"}
	wonOrder := storage.Job{OrderID: "order-1"}
	lostAuthz := storage.Job{AuthzID: "authz-1", ChallengeID: "lost"}
	lostOrder := storage.Job{OrderID: "order-1", ChallengeID: "lost"}

	var c storage.Claim
	_, err = s.UpdateAuthorization(ctx, "authz-1", startAuthz, storage.Queue(wonAuthz, &c))
	mustNot(t, "UpdateAuthorization to processing", err)
	_, err = s.UpdateOrder(ctx, "order-1", startOrder, storage.Queue(wonOrder, &c))
	mustNot(t, "UpdateOrder to processing", err)
	// Requests that read before those writes: their first attempt loses
	// the race, and fn refuses on the retry.
	c = storage.Claim{}
	_, err = s.UpdateAuthorization(ctx, "authz-1", startAuthz, storage.From(staleAuthz), storage.Queue(lostAuthz, &c))
	mustBe(t, "UpdateAuthorization that lost the race", err, errAlready)
	mustEqual(t, "claim of a lost race", c, storage.Claim{})
	_, err = s.UpdateOrder(ctx, "order-1", startOrder, storage.From(staleOrder), storage.Queue(lostOrder, &c))
	mustBe(t, "UpdateOrder that lost the race", err, errAlready)
	mustEqual(t, "claim of a lost race", c, storage.Claim{})

	r := b.Reopen(t, s)
	consumeCtx, cancel := context.WithCancel(ctx)
	got := make(chan storage.Job, 10)
	var finishErr atomic.Value
	done := make(chan error, 1)
	go func() {
		done <- r.Consume(consumeCtx, func(ctx context.Context, c storage.Claim) {
			if err := r.Finish(context.WithoutCancel(ctx), c); err != nil {
				finishErr.Store(err)
			}
			got <- c.Job
		})
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("Consume did not return within %v of cancel", waitTimeout)
		}
	}
	defer stop() // also when a check below fails

	want := map[storage.Job]bool{wonAuthz: true, wonOrder: true}
	deadline := time.After(waitTimeout)
	for len(want) > 0 {
		select {
		case j := <-got:
			if !want[j] {
				t.Fatalf("handed out %+v: not a job of a write that stood, or twice", j)
			}
			delete(want, j)
		case <-deadline:
			t.Fatalf("jobs of writes that stood not handed out within %v: %v", waitTimeout, want)
		}
	}
	stop()
	if err, _ := finishErr.Load().(error); err != nil {
		t.Fatalf("Finish: %v", err)
	}
	a, err := r.Authorization(ctx, "authz-1")
	mustNot(t, "Authorization", err)
	o, err := r.Order(ctx, "order-1")
	mustNot(t, "Order", err)
	mustEqual(t, "challenge status", a.Challenges[0].Status, acme.StatusProcessing)
	mustEqual(t, "order status", o.Status, acme.StatusProcessing)
}
