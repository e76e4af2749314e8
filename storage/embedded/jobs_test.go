package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

const waitTimeout = 10 * time.Second

// withLeftovers returns a file holding n job records, as a run that
// stopped before finishing them leaves it.
func withLeftovers(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmed.db")
	s, err := Open(path, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := range n {
		queueRaw(t, s, storage.Job{AuthzID: fmt.Sprint(i)})
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

// queueRaw stores a job record as a queueing update does, without the
// update.
func queueRaw(t *testing.T, s *Store, j storage.Job) uint64 {
	t.Helper()
	var seq uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		seq, err = queueJob(tx, j, s.now())
		return err
	})
	if err != nil {
		t.Fatalf("queueJob: %v", err)
	}
	return seq
}

func openTest(t *testing.T, path string, cfg Config) *Store {
	t.Helper()
	s, err := Open(path, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConsumeRunsWorkersAtOnce: leftovers are handled Workers at a time,
// and handlers that finish their claims leave no record behind.
func TestConsumeRunsWorkersAtOnce(t *testing.T) {
	const workers, jobs = 3, 10
	s := openTest(t, withLeftovers(t, jobs), Config{Workers: workers})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var mu sync.Mutex
	running, most := 0, 0
	started := make(chan struct{}, jobs)
	finished := make(chan error, jobs)
	release := make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(ctx context.Context, c storage.Claim) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			started <- struct{}{}
			<-release
			mu.Lock()
			running--
			mu.Unlock()
			finished <- s.Finish(ctx, c)
		})
	}()
	receive := func(what string, ch <-chan struct{}, n int) {
		t.Helper()
		for i := range n {
			select {
			case <-ch:
			case <-time.After(waitTimeout):
				t.Fatalf("%d of %d handlers %s within %v", i, n, what, waitTimeout)
			}
		}
	}
	receive("started", started, workers) // all workers busy at once
	close(release)
	receive("started", started, jobs-workers)
	for range jobs {
		if err := <-finished; err != nil {
			t.Fatalf("Finish: %v", err)
		}
	}
	if left := jobRecords(t, s); len(left) != 0 {
		t.Fatalf("records left after every claim was finished: %v", left)
	}
	cancel()
	if err := <-consumed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v", err)
	}
	if most != workers {
		t.Fatalf("at most %d handlers ran at once, want %d", most, workers)
	}
}

// TestConsumeSkipsJobsQueuedSinceOpen: those are held by the requests that
// queued them in this process.
func TestConsumeSkipsJobsQueuedSinceOpen(t *testing.T) {
	s := openTest(t, withLeftovers(t, 1), Config{})
	queueRaw(t, s, storage.Job{OrderID: "new"})
	seq, c, ok, err := s.nextLeftover(0)
	if err != nil || !ok || c != (storage.Claim{Job: storage.Job{AuthzID: "0"}, ID: "1"}) {
		t.Fatalf("first leftover: %d %+v %v %v", seq, c, ok, err)
	}
	if _, c, ok, err := s.nextLeftover(seq); ok || err != nil {
		t.Fatalf("after the leftover: %+v %v %v, want none", c, ok, err)
	}
}

// TestConsumeHandsOutReleased: a claim its holder in this process gave
// back (a validation not performed by its deadline) is handed out again,
// after the leftovers, and only once.
func TestConsumeHandsOutReleased(t *testing.T) {
	s := openTest(t, withLeftovers(t, 1), Config{})
	seq := queueRaw(t, s, storage.Job{AuthzID: "held"})
	released := storage.Claim{Job: storage.Job{AuthzID: "held"}, ID: claimID(seq)}

	got := make(chan storage.Claim, 4)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Consume(ctx, func(_ context.Context, c storage.Claim) { got <- c }) }()
	t.Cleanup(func() { cancel(); <-done })

	next := func() storage.Claim {
		t.Helper()
		select {
		case c := <-got:
			return c
		case <-time.After(waitTimeout):
			t.Fatal("Consume handed out nothing")
			return storage.Claim{}
		}
	}
	if c := next(); c.Job.AuthzID != "0" {
		t.Fatalf("first handed out %+v, want the leftover", c)
	}
	if err := s.Release(t.Context(), released); err != nil {
		t.Fatal(err)
	}
	if c := next(); c != released {
		t.Fatalf("handed out %+v, want the released %+v", c, released)
	}
	if err := s.Release(t.Context(), storage.Claim{}); err != nil {
		t.Fatalf("Release of a zero claim: %v", err)
	}
	select {
	case c := <-got:
		t.Fatalf("handed out %+v again", c)
	default:
	}
}

// TestQueueInRetriedBatch: bbolt re-runs the updates of a batch one of them
// failed, with the job sequence rolled back, so claims must name the
// records of the run that committed. Failing updates among concurrent ones
// make such re-runs likely; whatever happened, every claim handed back
// names exactly one stored record, and no record lacks its claim.
func TestQueueInRetriedBatch(t *testing.T) {
	const updates = 40
	s := openTest(t, filepath.Join(t.TempDir(), "acmed.db"), Config{})
	ctx := t.Context()
	var list []*acme.Authorization
	for i := range updates {
		list = append(list, &acme.Authorization{ID: fmt.Sprint("authz-", i), AccountID: "acct-1"})
	}
	if err := s.CreateOrder(ctx, &acme.Order{ID: "order-1", AccountID: "acct-1"}, list); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}

	boom := errors.New("fn refused")
	claims := make([]storage.Claim, updates)
	errs := make([]error, updates)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, a := range list {
		wg.Go(func() {
			<-start
			_, errs[i] = s.UpdateAuthorization(ctx, a.ID, func(a *acme.Authorization) error {
				a.Status = acme.StatusProcessing
				if i%2 == 1 {
					return boom
				}
				return nil
			}, storage.Queue(storage.Job{AuthzID: a.ID}, &claims[i]))
		})
	}
	close(start)
	wg.Wait()

	want := map[string]storage.Job{}
	for i, c := range claims {
		switch {
		case i%2 == 1:
			if errs[i] != boom || c != (storage.Claim{}) {
				t.Errorf("failing update %d: claim %+v, %v", i, c, errs[i])
			}
		case errs[i] != nil:
			t.Errorf("update %d: %v", i, errs[i])
		default:
			if _, dup := want[c.ID]; dup {
				t.Errorf("claim ID %s handed out twice", c.ID)
			}
			want[c.ID] = c.Job
		}
	}
	got := jobRecords(t, s)
	if len(got) != len(want) {
		t.Fatalf("%d records for %d claims:\n records %v\n claims %v", len(got), len(want), got, want)
	}
	for id, j := range want {
		if got[id] != j {
			t.Errorf("claim %s of %+v: record holds %+v", id, j, got[id])
		}
	}
}

// jobRecords returns the stored jobs by claim ID.
func jobRecords(t *testing.T, s *Store) map[string]storage.Job {
	t.Helper()
	records := map[string]storage.Job{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketJobs)).ForEach(func(k, v []byte) error {
			var j storage.Job
			if err := json.Unmarshal(v, &j); err != nil {
				return err
			}
			records[claimID(binary.BigEndian.Uint64(k))] = j
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return records
}

// TestPendingJobs: the count is the records in the file, the oldest time
// the first record's queue time by the store's clock, kept across a
// restart; finished jobs leave both. A record from before the queue time
// was kept counts, with no time.
func TestPendingJobs(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "acmed.db")
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	var (
		mu  sync.Mutex
		now = t0
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := openTest(t, path, Config{Now: clock})
	check := func(what string, s *Store, wantN int64, wantOldest time.Time) {
		t.Helper()
		n, oldest, err := s.PendingJobs(ctx)
		if err != nil {
			t.Fatalf("%s: PendingJobs: %v", what, err)
		}
		if n != wantN || !oldest.Equal(wantOldest) {
			t.Fatalf("%s: PendingJobs = %d, oldest %v; want %d, %v", what, n, oldest, wantN, wantOldest)
		}
	}
	check("empty", s, 0, time.Time{})

	var list []*acme.Authorization
	for i := range 3 {
		list = append(list, &acme.Authorization{ID: fmt.Sprint("authz-", i), AccountID: "acct-1"})
	}
	if err := s.CreateOrder(ctx, &acme.Order{ID: "order-1", AccountID: "acct-1"}, list); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	claims := make([]storage.Claim, len(list))
	for i, a := range list {
		mu.Lock()
		now = t0.Add(time.Duration(i) * time.Minute)
		mu.Unlock()
		if _, err := s.UpdateAuthorization(ctx, a.ID, func(a *acme.Authorization) error {
			a.Status = acme.StatusProcessing
			return nil
		}, storage.Queue(storage.Job{AuthzID: a.ID}, &claims[i])); err != nil || claims[i].ID == "" {
			t.Fatalf("queueing update %d: claim %+v, %v", i, claims[i], err)
		}
	}
	check("3 queued", s, 3, t0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, path, Config{Now: clock})
	check("after a restart", s, 3, t0)

	for i, c := range claims {
		if err := s.Finish(ctx, c); err != nil {
			t.Fatalf("Finish %+v: %v", c, err)
		}
		if i < len(claims)-1 {
			check(fmt.Sprint(i+1, " finished"), s, int64(len(claims)-i-1), t0.Add(time.Duration(i+1)*time.Minute))
		}
	}
	check("all finished", s, 0, time.Time{})

	// A record as an earlier acmed wrote it (the job alone) comes first.
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketJobs))
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), []byte(`{"OrderID":"old"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	queueRaw(t, s, storage.Job{OrderID: "new"})
	check("an old record first", s, 2, time.Time{})
}
