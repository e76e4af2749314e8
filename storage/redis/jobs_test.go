package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// A job whose consumer stops answering is taken over by another replica
// after ReclaimAfter: whether its handler hangs, its Consume was stopped
// mid-job, or its connection to Redis is gone (a replica killed with -9).
func TestJobReclaimedFromDeadConsumer(t *testing.T) {
	const reclaimAfter = 200 * time.Millisecond
	for _, tc := range []struct {
		name string
		// die makes replica a stop working on its job; stop ends a's Consume.
		die func(a *redis.Store, stop func())
	}{
		{"handler hangs", func(*redis.Store, func()) {}},
		{"consumer stopped", func(_ *redis.Store, stop func()) { stop() }},
		{"connection gone", func(a *redis.Store, _ func()) { _ = a.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			flush(t, client(t, srv.URL))
			a := open(t, srv.URL, redis.Config{Consumer: "a", ReclaimAfter: reclaimAfter})
			b := open(t, srv.URL, redis.Config{Consumer: "b", ReclaimAfter: reclaimAfter})
			job := storage.Job{AuthzID: "authz-1", ChallengeID: "chall-1"}

			gotA := make(chan storage.Job, 1)
			hang := make(chan struct{})
			stopA := runConsume(t, a, func(ctx context.Context, j storage.Job) {
				select {
				case gotA <- j:
				default: // a reclaimed its own job; only the first counts
				}
				// Until the test ends, or a's Consume is stopped.
				select {
				case <-hang:
				case <-ctx.Done():
				}
			})
			t.Cleanup(func() { close(hang) }) // runs before stopA's cleanup
			if err := a.Enqueue(t.Context(), job); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			receive(t, "a", gotA, job)
			tc.die(a, stopA)

			gotB := make(chan storage.Job, 1)
			runConsume(t, b, func(_ context.Context, j storage.Job) { gotB <- j })
			receive(t, "b", gotB, job)
			c := client(t, srv.URL)
			eventually(t, "job deleted once b handled it", func() bool {
				return c.XLen(t.Context(), "acmed:{jobs}").Val() == 0
			})
		})
	}
}

// runConsume runs s.Consume until the returned stop is called or the test
// ends, and checks that it returns when stopped.
func runConsume(t *testing.T, s *redis.Store, handle func(context.Context, storage.Job)) (stop func()) {
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
	s := open(t, srv.URL, redis.Config{Workers: workers})
	for i := range jobs {
		if err := s.Enqueue(t.Context(), storage.Job{OrderID: string(rune('a' + i))}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	started := make(chan storage.Job, jobs)
	release := make(chan struct{})
	runConsume(t, s, func(_ context.Context, j storage.Job) {
		started <- j
		<-release
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
