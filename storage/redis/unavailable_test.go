package redis_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// failFast is how soon a request must learn that Redis is gone: the API
// answers it with a 503, and a client should not wait long for that.
const failFast = 5 * time.Second

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestOpenUnreachable(t *testing.T) {
	start := time.Now()
	_, err := redis.Open(t.Context(), "redis://"+closedPort(t), redis.Config{})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > failFast {
		t.Fatalf("Open took %v to fail, want under %v", d, failFast)
	}
}

// A Redis that dies under a running store turns every call into
// ErrUnavailable within seconds, and the store recovers once it is back.
func TestRedisKilled(t *testing.T) {
	// WithAOF: a server of this test's own (it is killed) that keeps what
	// was written across the restart.
	srv := redistest.Start(t, redistest.WithAOF())
	s := open(t, srv.URL, redis.Config{})
	ctx := t.Context()
	order := &acme.Order{ID: storage.ScopedID("acct1", "o1"), AccountID: "acct1", Status: acme.StatusPending, Expires: time.Now().Add(time.Hour)}
	if err := s.CreateOrder(ctx, order, nil); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	srv.Kill(t)

	for _, tc := range []struct {
		name string
		call func(context.Context) error
	}{
		{"Ping", s.Ping},
		{"Order", func(ctx context.Context) error { _, err := s.Order(ctx, order.ID); return err }},
		{"UpdateOrder", func(ctx context.Context) error {
			_, err := s.UpdateOrder(ctx, order.ID, func(*acme.Order) error { return nil })
			return err
		}},
		{"CreateOrder", func(ctx context.Context) error {
			return s.CreateOrder(ctx, &acme.Order{ID: storage.ScopedID("acct1", "o2"), AccountID: "acct1"}, nil)
		}},
		{"AccountOrders", func(ctx context.Context) error { _, _, err := s.AccountOrders(ctx, "acct1", "", 10); return err }},
		{"ConsumeNonce", func(ctx context.Context) error {
			_, err := s.ConsumeNonce(ctx, "n", time.Now().Add(time.Minute))
			return err
		}},
		{"NonceKey", func(ctx context.Context) error { _, err := s.NonceKey(ctx, 1, nil, time.Time{}); return err }},
		{"Finish", func(ctx context.Context) error { return s.Finish(ctx, storage.Claim{ID: "1-1"}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.call(t.Context())
			if !errors.Is(err, storage.ErrUnavailable) {
				t.Errorf("%s: %v, want ErrUnavailable", tc.name, err)
			}
			if d := time.Since(start); d > failFast {
				t.Errorf("%s took %v to fail, want under %v", tc.name, d, failFast)
			}
		})
	}

	srv.Restart(t)
	eventually(t, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	got, err := s.Order(ctx, order.ID)
	if err != nil || got.ID != order.ID {
		t.Fatalf("Order after restart: %+v, %v", got, err)
	}
}

// Consume outlives an outage: it retries, and takes over a job whose
// holder went away with Redis once it is back.
func TestConsumeSurvivesOutage(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF())
	const reclaimAfter = 200 * time.Millisecond
	s := open(t, srv.URL, redis.Config{ReclaimAfter: reclaimAfter})
	ctx, cancel := context.WithCancel(t.Context())
	got := make(chan storage.Job, 1)
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(ctx context.Context, c storage.Claim) {
			_ = s.Finish(ctx, c)
			got <- c.Job
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-consumed
	})
	job := queueJob(t, s, "o1")
	srv.Kill(t)
	srv.Restart(t)
	eventually(t, "Ping after restart", func() bool { return s.Ping(ctx) == nil })
	select {
	case j := <-got:
		if j != job {
			t.Fatalf("handled %+v, want %+v", j, job)
		}
	case err := <-consumed:
		t.Fatalf("Consume returned %v", err)
	case <-time.After(waitTimeout):
		t.Fatalf("job not handled within %v of the restart", waitTimeout)
	}
}
