package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

const (
	// maxJobs caps the streams together (each at maxJobs/jobStreams).
	// Finished jobs are deleted, so only a backlog that size (replicas
	// down for long) loses its oldest jobs; their clients see processing
	// turn into expired orders and retry.
	maxJobs    = 100_000
	minBackoff = 50 * time.Millisecond
	maxBackoff = time.Second
)

// Release leaves c pending with this consumer: XAUTOCLAIM hands it to
// some replica's Consume once it has been idle for the reclaim time, the
// same way as a job whose holder died, so a released job waits that long
// before it is tried again (by then usually it has: the job's deadline is
// as long).
func (s *Store) Release(ctx context.Context, c storage.Claim) error {
	return ctx.Err()
}

// Finish acknowledges and deletes a claimed job.
func (s *Store) Finish(ctx context.Context, c storage.Claim) error {
	if c.ID == "" {
		return nil
	}
	key, entry, err := claimEntry(c.ID)
	if err != nil {
		return err
	}
	var p plan
	p.ack(key, entry)
	if _, err := s.apply(ctx, "finish job", p); err != nil {
		return err
	}
	return nil
}

// PendingJobs reports the jobs in the streams, on every replica, and when
// the oldest was queued, for acmed_jobs_pending and
// acmed_jobs_oldest_age_seconds. Finished jobs are deleted (XDEL, with
// their ack), so a stream's length is its unfinished jobs, whether held,
// waiting to be reclaimed, or never read (the legacy stream's); and an
// entry's ID is the Redis server's clock in ms when it was added, so each
// stream's first entry is its oldest job. Two commands per stream, XLEN
// and XRANGE - + COUNT 1, in one pipeline: one round trip on a single
// server, one per shard on a Cluster, never a read of every entry. A
// stream that does not exist counts 0.
func (s *Store) PendingJobs(ctx context.Context) (pending int64, oldest time.Time, err error) {
	keys := make([]string, 0, jobStreams+1)
	for i := range jobStreams {
		keys = append(keys, jobStreamKey(i))
	}
	keys = append(keys, legacyJobsKey)
	lens := make([]*goredis.IntCmd, len(keys))
	firsts := make([]*goredis.XMessageSliceCmd, len(keys))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, key := range keys {
			lens[i] = p.XLen(ctx, key)
			firsts[i] = p.XRangeN(ctx, key, "-", "+", 1)
		}
		return nil
	})
	if err != nil {
		return 0, time.Time{}, fail(ctx, "count jobs", err)
	}
	for i := range keys {
		pending += lens[i].Val()
		for _, m := range firsts[i].Val() {
			at, err := entryTime(m.ID)
			if err != nil {
				return 0, time.Time{}, fmt.Errorf("redis: count jobs: stream %s: %w", keys[i], err)
			}
			if oldest.IsZero() || at.Before(oldest) {
				oldest = at
			}
		}
	}
	return pending, oldest, nil
}

// entryTime is the time in a stream entry ID ("MS-SEQ").
func entryTime(id string) (time.Time, error) {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("entry ID %q is not MS-SEQ", id)
	}
	return time.UnixMilli(n), nil
}

// Consume hands out jobs whose claim went unfinished for Config.ReclaimAfter
// (DESIGN.md decision 4). Every job is born claimed by the script that
// queues it (the replica that took the request runs it) and pending in the
// group "workers" until the write that finishes it; one still pending that
// long belongs to a replica that died or a handler that overran, and
// XAUTOCLAIM moves it to this consumer. So the streams are scanned, not
// read: no replica blocks on them, and an idle one costs Redis one
// XAUTOCLAIM per stream (jobStreams of them, and the legacy one) per
// ReclaimAfter/2. Up to Config.Workers handlers run at once.
//
// Jobs are spread over jobStreams streams, each under its own hash tag,
// so that a Cluster spreads them over its shards; every Consume scans
// them all, and the single stream an earlier acmed used as well, so jobs
// it left are reclaimed after an upgrade.
//
// Several Consumes, on one Store or many, share the work. Redis failures
// do not end Consume: it backs off (up to a second) and tries again until
// ctx ends, then waits for running handlers and returns ctx.Err(). It
// returns early only if the Store is closed.
func (s *Store) Consume(ctx context.Context, handle func(context.Context, storage.Claim)) error {
	c := &consumer{
		s:       s,
		handle:  handle,
		slots:   make(chan struct{}, s.workers),
		streams: make([]streamScan, jobStreams+1),
	}
	for i := range jobStreams {
		c.streams[i] = streamScan{key: jobStreamKey(i), index: i}
	}
	c.streams[jobStreams] = streamScan{key: legacyJobsKey, index: -1, legacy: true}
	defer c.wg.Wait()
	return c.run(ctx)
}

// consumer is the state of one Consume call.
type consumer struct {
	s      *Store
	handle func(context.Context, storage.Claim)
	wg     sync.WaitGroup
	slots  chan struct{} // one token per running handler

	streams []streamScan
	cur     int // the stream the next fetch scans
}

// streamScan is where a consumer is in its scan of one stream.
type streamScan struct {
	key   string
	index int // its claim IDs' prefix; -1 for the legacy stream
	// legacy: the group is never created, as nothing is queued there; a
	// stream or group that is missing holds no job.
	legacy     bool
	groupReady bool
	// claimFrom is where the next XAUTOCLAIM resumes its scan of pending
	// jobs.
	claimFrom string
}

// claimID is the ID of a claim on entry of this stream.
func (st *streamScan) claimID(entry string) string {
	if st.legacy {
		return entry
	}
	return claimID(st.index, entry)
}

func (c *consumer) run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		n, err := c.acquire(ctx)
		if err != nil {
			return err
		}
		st, msgs, done, err := c.fetch(ctx, n)
		for _, m := range msgs {
			c.dispatch(ctx, st, m)
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

// fetch claims at most n jobs pending longer than ReclaimAfter from the
// stream it is scanning, and moves to the next stream when that scan ends
// or fails, so one unreachable shard does not hold up the others. done
// says it went round every stream.
func (c *consumer) fetch(ctx context.Context, n int) (st *streamScan, msgs []goredis.XMessage, done bool, err error) {
	st = &c.streams[c.cur]
	next, err := c.scan(ctx, st, n, &msgs)
	if err != nil || next == "0-0" {
		st.claimFrom = ""
		c.cur = (c.cur + 1) % len(c.streams)
		return st, msgs, err == nil && c.cur == 0, err
	}
	st.claimFrom = next
	return st, msgs, false, nil
}

// scan runs one XAUTOCLAIM on st and returns where the next resumes.
func (c *consumer) scan(ctx context.Context, st *streamScan, n int, msgs *[]goredis.XMessage) (next string, err error) {
	s := c.s
	if !st.groupReady && !st.legacy {
		// From 0: jobs queued before any group existed are kept.
		err := s.rdb.XGroupCreateMkStream(ctx, st.key, jobsGroup, "0").Err()
		if err != nil && !goredis.HasErrorPrefix(err, "BUSYGROUP") {
			return "", err
		}
		st.groupReady = true
	}
	start := st.claimFrom
	if start == "" {
		start = "0-0"
	}
	*msgs, next, err = s.rdb.XAutoClaim(ctx, &goredis.XAutoClaimArgs{
		Stream: st.key, Group: jobsGroup, Consumer: s.consumer,
		MinIdle: s.reclaimAfter, Start: start, Count: int64(n),
	}).Result()
	if goredis.HasErrorPrefix(err, "NOGROUP") {
		// Redis lost the group (a flush, a failover to a replica that
		// never saw it): the next scan recreates it. The legacy stream
		// without one has nothing left to reclaim.
		st.groupReady = false
		if st.legacy {
			return "0-0", nil
		}
	}
	return next, err
}

// dispatch runs the handler for m in a slot acquire took. The handler
// finishes the job; one that does not decode is finished here, as no retry
// would make it decode.
func (c *consumer) dispatch(ctx context.Context, st *streamScan, m goredis.XMessage) {
	id := st.claimID(m.ID)
	c.wg.Go(func() {
		defer c.release(1)
		j, ok := decodeJob(m)
		if !ok {
			_ = c.s.Finish(ctx, storage.Claim{ID: id})
			return
		}
		c.handle(ctx, storage.Claim{Job: j, ID: id})
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
