package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

const (
	// maxJobs caps the stream. Handled jobs are deleted, so only a backlog
	// that size (replicas down for long) loses its oldest jobs; their
	// clients see processing turn into expired orders and retry.
	maxJobs = 100_000
	// maxBlock bounds one XREADGROUP, and so how long Consume takes to
	// notice its ctx ended: go-redis does not interrupt a blocked read.
	maxBlock   = 2 * time.Second
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Enqueue appends j to the job stream, which any replica's Consume reads.
func (s *Store) Enqueue(ctx context.Context, j storage.Job) error {
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("redis: encode job: %w", err)
	}
	err = s.rdb.XAdd(ctx, &goredis.XAddArgs{
		Stream: jobsKey, MaxLen: maxJobs, Approx: true, Values: []any{jobField, raw},
	}).Err()
	if err != nil {
		return fail(ctx, "enqueue job", err)
	}
	return nil
}

// Consume reads the job stream as one consumer of the group "workers" and
// runs up to Config.Workers handlers at once (DESIGN.md decision 4). A job
// is acknowledged and deleted when its handler returns while ctx is live;
// otherwise it stays pending, and after Config.ReclaimAfter without an
// acknowledgement any consumer takes it over (XAUTOCLAIM), which is how the
// jobs of a replica that died get done. So is one whose handler runs longer
// than ReclaimAfter, hence handlers must tolerate running a job twice.
//
// Several Consumes, on one Store or many, share the work. Redis failures
// do not end Consume: it backs off (up to a second) and tries again until
// ctx ends, then waits for running handlers and returns ctx.Err(). It
// returns early only if the Store is closed.
func (s *Store) Consume(ctx context.Context, handle func(context.Context, storage.Job)) error {
	c := &consumer{
		s:      s,
		handle: handle,
		slots:  make(chan struct{}, s.workers),
		block:  min(maxBlock, s.reclaimAfter/2),
	}
	defer c.wg.Wait()
	return c.run(ctx)
}

// consumer is the state of one Consume call.
type consumer struct {
	s      *Store
	handle func(context.Context, storage.Job)
	wg     sync.WaitGroup
	slots  chan struct{} // one token per running handler
	block  time.Duration

	groupReady bool
	// claimFrom is where the next XAUTOCLAIM resumes its scan of pending
	// jobs; lastScan is when a scan last finished. Scans are timed by the
	// monotonic clock: they pace polling, not expiry, so Config.Now has no
	// say.
	claimFrom string
	lastScan  time.Time
}

func (c *consumer) run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		n, err := c.acquire(ctx)
		if err != nil {
			return err
		}
		msgs, err := c.fetch(ctx, n)
		for _, m := range msgs {
			c.dispatch(ctx, m)
		}
		c.release(n - len(msgs))
		switch {
		case err == nil:
			backoff = 0
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, goredis.ErrClosed):
			return fail(ctx, "consume jobs", err)
		}
		backoff = min(max(2*backoff, minBackoff), maxBackoff)
		t := time.NewTimer(backoff)
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

// fetch returns at most n jobs: first any pending too long (due for a
// scan), else new ones, waiting up to c.block for them.
func (c *consumer) fetch(ctx context.Context, n int) ([]goredis.XMessage, error) {
	s := c.s
	if !c.groupReady {
		// From 0: jobs enqueued before any replica consumed are kept.
		err := s.rdb.XGroupCreateMkStream(ctx, jobsKey, jobsGroup, "0").Err()
		if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
			return nil, err
		}
		c.groupReady = true
	}
	if time.Since(c.lastScan) >= s.reclaimAfter/2 {
		msgs, next, err := s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
			Stream: jobsKey, Group: jobsGroup, Consumer: s.consumer,
			MinIdle: s.reclaimAfter, Start: c.startOf(), Count: int64(n),
		}).Result()
		if err != nil {
			return nil, c.noteGroupGone(err)
		}
		c.claimFrom = next
		if next == "0-0" {
			c.lastScan = time.Now()
		}
		if len(msgs) > 0 {
			return msgs, nil
		}
	}
	streams, err := s.rdb.XReadGroup(ctx, &goredis.XReadGroupArgs{
		Group: jobsGroup, Consumer: s.consumer, Streams: []string{jobsKey, ">"},
		Count: int64(n), Block: c.block,
	}).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, nil // nothing new within c.block
	}
	if err != nil {
		return nil, c.noteGroupGone(err)
	}
	var msgs []goredis.XMessage
	for _, st := range streams {
		msgs = append(msgs, st.Messages...)
	}
	return msgs, nil
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

// dispatch runs the handler for m in a slot acquire took. A job that does
// not decode is acknowledged unhandled: no retry would make it decode.
func (c *consumer) dispatch(ctx context.Context, m goredis.XMessage) {
	c.wg.Go(func() {
		defer c.release(1)
		if j, ok := decodeJob(m); ok {
			c.handle(ctx, j)
		}
		if ctx.Err() != nil {
			return // the handler may have given up half way: leave it pending
		}
		// If this fails the job stays pending, and is run again after
		// ReclaimAfter; handlers tolerate that.
		_, _ = c.s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			p.XAck(ctx, jobsKey, jobsGroup, m.ID)
			p.XDel(ctx, jobsKey, m.ID)
			return nil
		})
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
