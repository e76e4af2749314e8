package authority

import (
	"context"
	"sync"
	"time"

	"github.com/acmed/acmed/storage"
)

// waiters lets a request wait for its own job when this replica's worker
// runs it; a job run by another replica is seen by polling instead.
type waiters struct {
	mu sync.Mutex
	m  map[storage.Job]chan struct{}
}

func (w *waiters) add(j storage.Job) chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = map[storage.Job]chan struct{}{}
	}
	ch := make(chan struct{})
	w.m[j] = ch
	return ch
}

func (w *waiters) remove(j storage.Job, ch chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[j] == ch {
		delete(w.m, j)
	}
}

// done wakes whoever waits for j.
func (w *waiters) done(j storage.Job) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ch, ok := w.m[j]; ok {
		close(ch)
		delete(w.m, j)
	}
}

// Polling bounds for await: a job another replica works is seen within
// a few milliseconds when it is fast, and at most every maxPoll when not.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// await blocks until the job is finished, max passes or ctx ends, and
// reports whether it finished. done is closed when this replica ran the
// job; finished is polled, with backoff, for a job another replica runs.
func (a *Authority) await(ctx context.Context, done <-chan struct{}, max time.Duration, finished func(context.Context) bool) bool {
	if max <= 0 {
		return false
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	if !a.cfg.SharedQueue {
		// Every job runs here, so done is all there is to wait for; a
		// poll would be a store read for nothing.
		select {
		case <-done:
			return true
		case <-deadline.C:
		case <-ctx.Done():
		}
		return false
	}
	for delay := firstPoll; ; delay = min(2*delay, maxPoll) {
		poll := time.NewTimer(delay)
		select {
		case <-done:
			poll.Stop()
			return true
		case <-deadline.C:
			poll.Stop()
			return false
		case <-ctx.Done():
			poll.Stop()
			return false
		case <-poll.C:
			if finished(ctx) {
				return true
			}
		}
	}
}

// work runs one job of either kind and wakes its waiter. A job is bounded
// by its own timeout and not by ctx, so a shutdown lets a started job finish
// and record its result rather than leave a resource processing.
func (a *Authority) work(ctx context.Context, j storage.Job) {
	defer a.waiters.done(j)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.JobTimeout)
	defer cancel()
	if j.OrderID != "" {
		a.issueJob(ctx, j)
		return
	}
	a.validate(ctx, j)
}
