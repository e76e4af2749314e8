package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// A job whose holder stops short of finishing it is handed to another
// replica's Consume after ReclaimAfter: whether the holder is alive but
// stuck, or its connection to Redis is gone (a replica killed with -9).
// And a Consume handler that stops short is itself reclaimed.
func TestJobReclaimedFromDeadHolder(t *testing.T) {
	const reclaimAfter = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		die  func(a *redis.Store)
	}{
		{"holder stuck", func(*redis.Store) {}},
		{"connection gone", func(a *redis.Store) { _ = a.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			flush(t, client(t, srv.URL))
			a := open(t, srv.URL, redis.Config{Consumer: "a", ReclaimAfter: reclaimAfter})
			b := open(t, srv.URL, redis.Config{Consumer: "b", ReclaimAfter: reclaimAfter})
			c := open(t, srv.URL, redis.Config{Consumer: "c", ReclaimAfter: reclaimAfter})
			job := queueJob(t, a, "o1")
			tc.die(a)

			// b takes it over but never finishes it either ...
			gotB := make(chan storage.Job, 1)
			runConsume(t, b, func(_ context.Context, cl storage.Claim) {
				select {
				case gotB <- cl.Job:
				default: // b reclaimed it again; only the first counts
				}
			})
			receive(t, "b", gotB, job)
			// ... so c gets it, and finishes it.
			gotC := make(chan storage.Job, 1)
			runConsume(t, c, func(ctx context.Context, cl storage.Claim) {
				if err := c.Finish(ctx, cl); err != nil {
					t.Errorf("Finish: %v", err)
				}
				gotC <- cl.Job
			})
			receive(t, "c", gotC, job)
			rc := client(t, srv.URL)
			eventually(t, "job deleted once c finished it", func() bool {
				return rc.XLen(t.Context(), "acmed:{jobs}").Val() == 0
			})
		})
	}
}

// queueJob creates an order and moves it to processing through s, queueing
// its issuance job claimed by s, which never finishes it.
func queueJob(t *testing.T, s *redis.Store, id string) storage.Job {
	t.Helper()
	ctx := t.Context()
	o := &acme.Order{ID: storage.ScopedID("acct1", id), AccountID: "acct1", Status: acme.StatusPending,
		Expires: time.Now().Add(time.Hour)}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	job := storage.Job{OrderID: o.ID}
	var claim storage.Claim
	if _, err := s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
		o.Status = acme.StatusProcessing
		return nil
	}, storage.Queue(job, &claim)); err != nil {
		t.Fatalf("UpdateOrder queueing: %v", err)
	}
	if claim.Job != job || claim.ID == "" {
		t.Fatalf("claim %+v for job %+v", claim, job)
	}
	return job
}

// runConsume runs s.Consume until the returned stop is called or the test
// ends, and checks that it returns when stopped.
func runConsume(t *testing.T, s *redis.Store, handle func(context.Context, storage.Claim)) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Consume(ctx, handle) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(waitTimeout):
			t.Errorf("Consume did not return within %v of its ctx ending", waitTimeout)
		}
	}
	t.Cleanup(stop)
	return stop
}

func receive(t *testing.T, who string, got <-chan storage.Job, want storage.Job) {
	t.Helper()
	select {
	case j := <-got:
		if j != want {
			t.Fatalf("%s handled %+v, want %+v", who, j, want)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("%s handled no job within %v", who, waitTimeout)
	}
}

// Several workers of one Consume run at once, and every job is handled
// exactly once and then deleted from the stream.
func TestConsumeRunsWorkersAtOnce(t *testing.T) {
	const workers, jobs = 3, 10
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	holder := open(t, srv.URL, redis.Config{Consumer: "holder"})
	s := open(t, srv.URL, redis.Config{Workers: workers, ReclaimAfter: time.Second})
	for i := range jobs {
		queueJob(t, holder, string(rune('a'+i)))
	}
	started := make(chan storage.Job, jobs)
	release := make(chan struct{})
	runConsume(t, s, func(ctx context.Context, cl storage.Claim) {
		started <- cl.Job
		<-release
		if err := s.Finish(ctx, cl); err != nil {
			t.Errorf("Finish: %v", err)
		}
	})
	seen := map[storage.Job]bool{}
	take := func(n int) {
		t.Helper()
		for range n {
			select {
			case j := <-started:
				if seen[j] {
					t.Fatalf("job %+v handled twice", j)
				}
				seen[j] = true
			case <-time.After(waitTimeout):
				t.Fatalf("%d of %d jobs started within %v", len(seen), jobs, waitTimeout)
			}
		}
	}
	take(workers)
	select {
	case j := <-started:
		t.Fatalf("job %+v started while %d workers were busy", j, workers)
	default:
	}
	close(release)
	take(jobs - workers)
	eventually(t, "all jobs deleted", func() bool { return c.XLen(t.Context(), "acmed:{jobs}").Val() == 0 })
}
