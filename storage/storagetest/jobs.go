package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
)

func testJobs(t *testing.T, open func(*testing.T) storage.Store) {
	s := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const queued = 20

	want := map[storage.Job]int{}
	for i := range queued {
		j := storage.Job{AuthzID: fmt.Sprintf("authz-%d", i), ChallengeID: fmt.Sprintf("chall-%d", i)}
		mustNot(t, "Enqueue", s.Enqueue(ctx, j))
		want[j] = 1
	}

	var mu sync.Mutex
	handled := map[storage.Job]int{}
	signal := make(chan storage.Job, 2*queued)
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(_ context.Context, j storage.Job) {
			mu.Lock()
			handled[j]++
			mu.Unlock()
			signal <- j
		})
	}()
	await := func(n int) {
		t.Helper()
		deadline := time.After(waitTimeout)
		for i := range n {
			select {
			case <-signal:
			case err := <-consumed:
				t.Fatalf("Consume returned %v after %d of %d jobs", err, i, n)
			case <-deadline:
				t.Fatalf("handled %d of %d jobs within %v", i, n, waitTimeout)
			}
		}
	}

	await(queued)
	late := storage.Job{AuthzID: "authz-late", ChallengeID: "chall-late"}
	mustNot(t, "Enqueue while consuming", s.Enqueue(ctx, late))
	want[late] = 1
	await(1)

	cancel()
	select {
	case err := <-consumed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Consume after cancel returned %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Consume did not return within %v of cancel", waitTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	mustEqual(t, "times each job was handled", handled, want)
}
