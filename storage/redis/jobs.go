package redis

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

const (
	// maxJobs caps the stream. Finished jobs are deleted, so only a backlog
	// that size (replicas down for long) loses its oldest jobs; their
	// clients see processing turn into expired orders and retry.
	maxJobs    = 100_000
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Finish acknowledges and deletes a claimed job.
func (s *Store) Finish(ctx context.Context, c storage.Claim) error {
	if c.ID == "" {
		return nil
	}
	var p plan
	p.ack(c.ID)
	if _, err := s.apply(ctx, "finish job", p); err != nil {
		return err
	}
	return nil
}

// Consume hands out jobs whose claim went unfinished for Config.ReclaimAfter
// (DESIGN.md decision 4). Every job is born claimed by the script that
// queues it (the replica that took the request runs it) and pending in the
// group "workers" until the write that finishes it; one still pending that
// long belongs to a replica that died or a handler that overran, and
// XAUTOCLAIM moves it to this consumer. So the stream is scanned, not
// read: no replica blocks on it, and an idle one costs Redis one scan per
// ReclaimAfter/2. Up to Config.Workers handlers run at once.
//
// Several Consumes, on one Store or many, share the work. Redis failures
// do not end Consume: it backs off (up to a second) and tries again until
// ctx ends, then waits for running handlers and returns ctx.Err(). It
// returns early only if the Store is closed.
func (s *Store) Consume(ctx context.Context, handle func(context.Context, storage.Claim)) error {
	c := &consumer{
		s:      s,
		handle: handle,
		slots:  make(chan struct{}, s.workers),
	}
	defer c.wg.Wait()
	return c.run(ctx)
}

// consumer is the state of one Consume call.
type consumer struct {
	s      *Store
	handle func(context.Context, storage.Claim)
	wg     sync.WaitGroup
	slots  chan struct{} // one token per running handler

	groupReady bool
	// claimFrom is where the next XAUTOCLAIM resumes its scan of pending
	// jobs.
	claimFrom string
}

func (c *consumer) run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		n, err := c.acquire(ctx)
		if err != nil {
			return err
		}
		msgs, done, err := c.fetch(ctx, n)
		for _, m := range msgs {
			c.dispatch(ctx, m)
		}
		c.release(n - len(msgs))
		wait := time.Duration(0)
		switch {
		case err == nil && !done:
			backoff = 0
			continue // more of the scan to go
		case err == nil:
			backoff, wait = 0, c.s.reclaimAfter/2
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, goredis.ErrClosed):
			return fail(ctx, "consume jobs", err)
		default:
			backoff = min(max(2*backoff, minBackoff), maxBackoff)
			wait = backoff
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// acquire waits for a free handler slot, then takes every other free one;
// it returns how many it holds.
func (c *consumer) acquire(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	n := 1
	for n < cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
			n++
		default:
			return n, nil
		}
	}
	return n, nil
}

func (c *consumer) release(n int) {
	for range n {
		<-c.slots
	}
}

// fetch claims at most n jobs pending longer than ReclaimAfter; done says
// the scan of pending jobs reached the end.
func (c *consumer) fetch(ctx context.Context, n int) (msgs []goredis.XMessage, done bool, err error) {
	s := c.s
	if !c.groupReady {
		// From 0: jobs queued before any group existed are kept.
		err := s.rdb.XGroupCreateMkStream(ctx, jobsKey, jobsGroup, "0").Err()
		if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
			return nil, false, err
		}
		c.groupReady = true
	}
	msgs, next, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: jobsKey, Group: jobsGroup, Consumer: s.consumer,
		MinIdle: s.reclaimAfter, Start: c.startOf(), Count: int64(n),
	}).Result()
	if err != nil {
		return nil, false, c.noteGroupGone(err)
	}
	c.claimFrom = next
	return msgs, next == "0-0", nil
}

func (c *consumer) startOf() string {
	if c.claimFrom == "" {
		return "0-0"
	}
	return c.claimFrom
}

// noteGroupGone makes the next fetch recreate the group if Redis lost it
// (a flush, a failover to a replica that never saw it).
func (c *consumer) noteGroupGone(err error) error {
	if goredis.HasErrorPrefix(err, "NOGROUP") {
		c.groupReady, c.claimFrom = false, ""
	}
	return err
}

// dispatch runs the handler for m in a slot acquire took. The handler
// finishes the job; one that does not decode is finished here, as no retry
// would make it decode.
func (c *consumer) dispatch(ctx context.Context, m goredis.XMessage) {
	c.wg.Go(func() {
		defer c.release(1)
		j, ok := decodeJob(m)
		if !ok {
			_ = c.s.Finish(ctx, storage.Claim{ID: m.ID})
			return
		}
		c.handle(ctx, storage.Claim{Job: j, ID: m.ID})
	})
}

func decodeJob(m goredis.XMessage) (storage.Job, bool) {
	var j storage.Job
	raw, ok := m.Values[jobField].(string)
	if !ok {
		return j, false
	}
	return j, json.Unmarshal([]byte(raw), &j) == nil
}
