package embedded

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

const waitTimeout = 10 * time.Second

func TestConsumeRunsWorkersAtOnceAndDeletesJobs(t *testing.T) {
	const workers, jobs = 3, 10
	s, err := Open(filepath.Join(t.TempDir(), "acmed.db"), Config{Workers: workers})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	for i := range jobs {
		if err := s.Enqueue(ctx, storage.Job{AuthzID: fmt.Sprint(i)}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}

	var mu sync.Mutex
	running, most := 0, 0
	started := make(chan struct{}, jobs)
	release := make(chan struct{})
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(context.Context, storage.Job) {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			started <- struct{}{}
			<-release
			mu.Lock()
			running--
			mu.Unlock()
		})
	}()
	receive := func(n int) {
		t.Helper()
		for i := range n {
			select {
			case <-started:
			case <-time.After(waitTimeout):
				t.Fatalf("%d of %d handlers started within %v", i, n, waitTimeout)
			}
		}
	}
	receive(workers) // all workers busy at once
	close(release)
	receive(jobs - workers)

	// Deletion follows each handler's return, so poll until it has.
	deadline := time.Now().Add(waitTimeout)
	for left := countJobs(t, s); left > 0; left = countJobs(t, s) {
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs still stored %v after all were handled", left, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-consumed; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v", err)
	}
	if most != workers {
		t.Fatalf("at most %d handlers ran at once, want %d", most, workers)
	}
}

func countJobs(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket([]byte(bucketJobs)).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
