package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

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
			stopB := runConsume(t, b, func(_ context.Context, cl storage.Claim) {
				select {
				case gotB <- cl.Job:
				default: // b reclaimed it again; only the first counts
				}
			})
			receive(t, "b", gotB, job)
			// b's own reclaim loop would race c's for the job on every
			// tick, and could win each one: b stops consuming, as a
			// replica wedged after taking the job would.
			stopB()
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
				return jobsLeft(t, rc) == 0
			})
		})
	}
}

// queueJob creates an order and moves it to processing through s, queueing
// its issuance job claimed by s, which never finishes it.
func queueJob(t *testing.T, s *redis.Store, id string) storage.Job {
	t.Helper()
	return queueClaim(t, s, id).Job
}

// queueClaim is queueJob, returning the claim for the test to finish.
func queueClaim(t *testing.T, s *redis.Store, id string) storage.Claim {
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
	return claim
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
	eventually(t, "all jobs deleted", func() bool { return jobsLeft(t, c) == 0 })
}

// On a Cluster the jobs spread over several streams on several shards,
// and one replica's Consume reclaims them from all of them.
func TestJobsSpreadOverClusterShards(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	const jobs = 48
	cluster := redistest.StartCluster(t)
	c := client(t, cluster.URL)
	holder := open(t, cluster.URL, redis.Config{Consumer: "holder"})
	s := open(t, cluster.URL, redis.Config{Consumer: "worker", ReclaimAfter: 200 * time.Millisecond})
	want := map[storage.Job]bool{}
	for i := range jobs {
		want[queueJob(t, holder, fmt.Sprintf("o%d", i))] = true
	}

	ctx := t.Context()
	streams, shards := 0, map[string]bool{}
	for i := range jobStreams {
		if c.XLen(ctx, jobStreamKey(i)).Val() == 0 {
			continue
		}
		streams++
		node, err := c.(*goredis.ClusterClient).MasterForKey(ctx, jobStreamKey(i))
		if err != nil {
			t.Fatal(err)
		}
		shards[node.Options().Addr] = true
	}
	t.Logf("%d jobs in %d streams on %d shards", jobs, streams, len(shards))
	if streams < 2 || len(shards) < 2 {
		t.Fatalf("%d jobs landed in %d streams on %d shards; want several of each", jobs, streams, len(shards))
	}

	got := make(chan storage.Job, jobs)
	runConsume(t, s, func(ctx context.Context, cl storage.Claim) {
		if err := s.Finish(ctx, cl); err != nil {
			t.Errorf("Finish %+v: %v", cl, err)
		}
		got <- cl.Job
	})
	for range jobs {
		select {
		case j := <-got:
			if !want[j] {
				t.Fatalf("job %+v handled twice, or never queued", j)
			}
			delete(want, j)
		case <-time.After(waitTimeout):
			t.Fatalf("%d jobs not handled within %v", len(want), waitTimeout)
		}
	}
	eventually(t, "every stream empty", func() bool { return jobsLeft(t, c) == 0 })
}

// A job an earlier acmed left pending in its single stream, acmed:{jobs},
// is reclaimed after an upgrade and finished there.
func TestLegacyJobStreamReclaimed(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	ctx := t.Context()
	const legacy = "acmed:{jobs}"
	job := storage.Job{OrderID: "acct1.old"}
	// What an earlier acmed's script did: append, and read as its consumer.
	if err := c.XGroupCreateMkStream(ctx, legacy, "workers", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &goredis.XAddArgs{Stream: legacy, Values: []any{"job", `{"OrderID":"acct1.old"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XReadGroup(ctx, &goredis.XReadGroupArgs{Group: "workers", Consumer: "old", Streams: []string{legacy, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}

	s := open(t, srv.URL, redis.Config{ReclaimAfter: 200 * time.Millisecond})
	got := make(chan storage.Job, 1)
	runConsume(t, s, func(ctx context.Context, cl storage.Claim) {
		if err := s.Finish(ctx, cl); err != nil {
			t.Errorf("Finish %+v: %v", cl, err)
		}
		got <- cl.Job
	})
	receive(t, "the upgraded replica", got, job)
	eventually(t, "legacy job deleted", func() bool { return c.XLen(ctx, legacy).Val() == 0 })
}

// Finish refuses a claim ID this store never hands out, rather than ack an
// entry of some other stream.
func TestFinishRejectsForeignClaimID(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL, redis.Config{})
	for _, id := range []string{"16/1-0", "-1/1-0", "x/1-0", "3/"} {
		if err := s.Finish(t.Context(), storage.Claim{ID: id}); err == nil {
			t.Errorf("Finish of claim ID %q: no error", id)
		}
	}
}
