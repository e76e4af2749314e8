package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// updatable is one of the resources whose updates take options, as seeded
// by seedUpdatable.
type updatable[T acme.Order | acme.Authorization] struct {
	job    storage.Job // what a request would queue with an update of it
	get    func(context.Context, storage.Store) (*T, error)
	update func(context.Context, storage.Store, func(*T) error, ...storage.Option) (*T, error)
	// bump changes the resource as queueing its job does; it changes it
	// again each time. mark is another request's change, apart from bump's.
	bump, mark func(*T)
}

var authzUpdates = updatable[acme.Authorization]{
	job: storage.Job{AuthzID: "authz-1", ChallengeID: "authz-1-http"},
	get: func(ctx context.Context, s storage.Store) (*acme.Authorization, error) {
		return s.Authorization(ctx, "authz-1")
	},
	update: func(ctx context.Context, s storage.Store, fn func(*acme.Authorization) error, opts ...storage.Option) (*acme.Authorization, error) {
		return s.UpdateAuthorization(ctx, "authz-1", fn, opts...)
	},
	bump: func(a *acme.Authorization) { a.Challenges[0].Queued = a.Challenges[0].Queued.Add(time.Minute) },
	mark: func(a *acme.Authorization) { a.Challenges[1].Status = acme.StatusInvalid },
}

var orderUpdates = updatable[acme.Order]{
	job: storage.Job{OrderID: "order-1"},
	get: func(ctx context.Context, s storage.Store) (*acme.Order, error) {
		return s.Order(ctx, "order-1")
	},
	update: func(ctx context.Context, s storage.Store, fn func(*acme.Order) error, opts ...storage.Option) (*acme.Order, error) {
		return s.UpdateOrder(ctx, "order-1", fn, opts...)
	},
	bump: func(o *acme.Order) { o.Queued = o.Queued.Add(time.Minute) },
	mark: func(o *acme.Order) { o.Status = acme.StatusReady },
}

// seedUpdatable stores what authzUpdates and orderUpdates update.
func seedUpdatable(t *testing.T, ctx context.Context, s storage.Store) {
	t.Helper()
	a := newAuthz("authz-1", "acct-1", "example.com", false)
	mustNot(t, "CreateOrder", s.CreateOrder(ctx, newOrder("order-1", "acct-1", a), []*acme.Authorization{a}))
}

func testOptions(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("authorization", func(t *testing.T) { testUpdateOptions(t, open, authzUpdates) })
	t.Run("order", func(t *testing.T) { testUpdateOptions(t, open, orderUpdates) })
	t.Run("WithCertificate", func(t *testing.T) { testWithCertificate(t, open) })
}

func testUpdateOptions[T acme.Order | acme.Authorization](t *testing.T, open func(*testing.T) storage.Store, u updatable[T]) {
	t.Run("Queue", func(t *testing.T) { testQueue(t, open, u) })
	t.Run("Finishing", func(t *testing.T) { testFinishing(t, open, u) })
	t.Run("From", func(t *testing.T) { testFrom(t, open, u) })
}

// testQueue: a job is queued, and its claim handed back, only with a write.
func testQueue[T acme.Order | acme.Authorization](t *testing.T, open func(*testing.T) storage.Store, u updatable[T]) {
	boom := errors.New("fn refused")
	for _, tc := range []struct {
		name    string
		fn      func(*T) error
		wantErr error
		writes  bool
	}{
		{"with a change", func(v *T) error { u.bump(v); return nil }, nil, true},
		{"without a change", func(*T) error { return nil }, nil, false},
		{"fn fails", func(v *T) error { u.bump(v); return boom }, boom, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			seedUpdatable(t, ctx, s)
			want, err := u.get(ctx, s)
			mustNot(t, "read before", err)
			if tc.writes {
				u.bump(want)
			}

			var claim storage.Claim
			got, err := u.update(ctx, s, tc.fn, storage.Queue(u.job, &claim))
			if err != tc.wantErr {
				t.Fatalf("update returned %v, want %v", err, tc.wantErr)
			}
			if err == nil {
				mustEqual(t, "update result", got, want)
			}
			stored, err := u.get(ctx, s)
			mustNot(t, "read after", err)
			mustEqual(t, "stored", stored, want)
			if !tc.writes {
				mustEqual(t, "claim", claim, storage.Claim{})
				return
			}
			mustEqual(t, "claimed job", claim.Job, u.job)
			if claim.ID == "" {
				t.Fatal("claim of a queued job has no ID")
			}
			mustNot(t, "Finish", s.Finish(ctx, claim))
		})
	}
}

// testFinishing: a write finishes a claim whether or not fn changes
// anything, and finishing it again is no error.
func testFinishing[T acme.Order | acme.Authorization](t *testing.T, open func(*testing.T) storage.Store, u updatable[T]) {
	for _, tc := range []struct {
		name   string
		change bool
	}{
		{"with a change", true},
		{"without a change", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			seedUpdatable(t, ctx, s)
			var claim storage.Claim
			_, err := u.update(ctx, s, func(v *T) error { u.bump(v); return nil }, storage.Queue(u.job, &claim))
			mustNot(t, "queueing update", err)
			want, err := u.get(ctx, s)
			mustNot(t, "read", err)
			if tc.change {
				u.mark(want)
			}

			got, err := u.update(ctx, s, func(v *T) error {
				if tc.change {
					u.mark(v)
				}
				return nil
			}, storage.Finishing(claim))
			mustNot(t, "finishing update", err)
			mustEqual(t, "update result", got, want)
			stored, err := u.get(ctx, s)
			mustNot(t, "read after", err)
			mustEqual(t, "stored", stored, want)
			mustNot(t, "Finish of a finished claim", s.Finish(ctx, claim))
		})
	}
}

// testWithCertificate: an order's update stores its certificate with the
// write, and fails as a whole when the serial is taken: no order change, no
// job queued with it.
func testWithCertificate(t *testing.T, open func(*testing.T) storage.Store) {
	for _, tc := range []struct {
		name    string
		taken   bool // another certificate holds the serial
		change  bool
		wantErr error
	}{
		{"stored with the write", false, true, nil},
		{"not stored without a write", false, false, nil},
		{"serial taken", true, true, storage.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			seedUpdatable(t, ctx, s)
			other := newCertificate("1a", "acct-2", "order-2")
			if tc.taken {
				mustNot(t, "PutCertificate", s.PutCertificate(ctx, other))
			}
			issue := func(o *acme.Order) {
				if tc.change {
					o.Status, o.CertSerial = acme.StatusValid, "1a"
				}
			}
			want, err := s.Order(ctx, "order-1")
			mustNot(t, "Order", err)
			if tc.wantErr == nil {
				issue(want)
			}

			cert := newCertificate("1a", "acct-1", "order-1")
			var claim storage.Claim
			_, err = s.UpdateOrder(ctx, "order-1", func(o *acme.Order) error { issue(o); return nil },
				storage.WithCertificate(cert), storage.Queue(orderUpdates.job, &claim))
			mustBe(t, "UpdateOrder", err, tc.wantErr)
			if queued := tc.change && tc.wantErr == nil; queued != (claim.ID != "") {
				t.Fatalf("claim %+v, want one: %v", claim, queued)
			}
			if claim.ID != "" {
				mustNot(t, "Finish", s.Finish(ctx, claim))
			}
			got, err := s.Order(ctx, "order-1")
			mustNot(t, "Order after", err)
			mustEqual(t, "stored order", got, want)
			stored, err := s.Certificate(ctx, "1a")
			switch {
			case tc.taken:
				mustNot(t, "Certificate", err)
				mustEqual(t, "certificate holding the serial", stored, other)
			case tc.change:
				mustNot(t, "Certificate", err)
				mustEqual(t, "certificate stored with the order", stored, cert)
			default:
				mustBe(t, "Certificate", err, storage.ErrNotFound)
			}
		})
	}
}
