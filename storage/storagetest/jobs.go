package storagetest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// testJobs covers what every backend shares: finishing claims, and a
// Consume that has nothing to hand out. When a claim left unfinished is
// handed out (after a reclaim time, after a restart) is each backend's to
// test.
func testJobs(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	seedUpdatable(t, ctx, s)
	u := authzUpdates
	queue := func() storage.Claim {
		t.Helper()
		var c storage.Claim
		_, err := u.update(ctx, s, func(a *acme.Authorization) error { u.bump(a); return nil }, storage.Queue(u.job, &c))
		mustNot(t, "queueing update", err)
		if c.ID == "" {
			t.Fatal("claim of a queued job has no ID")
		}
		return c
	}

	byWrite, byFinish := queue(), queue()
	if byWrite.ID == byFinish.ID {
		t.Fatalf("two queued jobs share the claim ID %q", byWrite.ID)
	}
	_, err := u.update(ctx, s, func(a *acme.Authorization) error { u.mark(a); return nil }, storage.Finishing(byWrite))
	mustNot(t, "finishing update", err)
	mustNot(t, "Finish", s.Finish(ctx, byFinish))
	for _, c := range []storage.Claim{byWrite, byFinish} {
		mustNot(t, "Finish of a finished claim", s.Finish(ctx, c))
	}

	// Every claim is finished, so handle has nothing to be called for. The
	// check is one-sided: Consume may be stopped before it looked.
	var handled atomic.Int32
	consumeCtx, cancel := context.WithCancel(ctx)
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(consumeCtx, func(context.Context, storage.Claim) { handled.Add(1) })
	}()
	cancel()
	select {
	case err := <-consumed:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Consume after cancel returned %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Consume did not return within %v of cancel", waitTimeout)
	}
	mustEqual(t, "claims handed out", handled.Load(), 0)
}
