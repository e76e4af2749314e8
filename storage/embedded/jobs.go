package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// jobRecord is a job as the bucket stores it: the job, and when it was
// queued (by the store's clock) for PendingJobs. Records written before
// the time was kept have none and decode with a zero Queued; an older
// acmed reading a newer record ignores the field.
type jobRecord struct {
	storage.Job
	Queued time.Time `json:",omitzero"`
}

// queueJob stores j, queued at now, under the bucket's next sequence,
// which is the claim's ID, and returns that sequence. It is never 0.
func queueJob(tx *bolt.Tx, j storage.Job, now time.Time) (uint64, error) {
	raw, err := json.Marshal(jobRecord{Job: j, Queued: now})
	if err != nil {
		return 0, fmt.Errorf("embedded store: encode job: %w", err)
	}
	b := tx.Bucket([]byte(bucketJobs))
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	return seq, b.Put(seqKey(seq), raw)
}

func claimID(seq uint64) string { return strconv.FormatUint(seq, 10) }

// finishJob deletes c's record. A claim already finished has none, which
// is no error: a job may be finished by its result write and again by a
// second holder after a restart.
func finishJob(tx *bolt.Tx, c storage.Claim) error {
	if c.ID == "" { // a zero claim: Queue wrote nothing
		return nil
	}
	seq, err := strconv.ParseUint(c.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("embedded store: finish job: claim ID %q is not one this store hands out", c.ID)
	}
	return tx.Bucket([]byte(bucketJobs)).Delete(seqKey(seq))
}

// PendingJobs reports the job records in the file and when the oldest
// was queued, for acmed_jobs_pending and acmed_jobs_oldest_age_seconds.
// Every unfinished job has a record (held, released or left by an
// earlier run), and records are keyed by sequence, so the first is the
// oldest. The count is the bucket's key count, which bbolt sums from its
// pages' headers, never reading a record. A first record written before
// the queue time was kept has none: oldest is then zero, which the metric
// shows as age 0, until that job is finished.
func (s *Store) PendingJobs(ctx context.Context) (pending int64, oldest time.Time, err error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	err = protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte(bucketJobs))
			pending = int64(b.Stats().KeyN)
			k, v := b.Cursor().First()
			if k == nil {
				return nil
			}
			var r jobRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("embedded store: decode job %d: %w", binary.BigEndian.Uint64(k), err)
			}
			oldest = r.Queued
			return nil
		})
	})
	if err != nil {
		return 0, time.Time{}, err
	}
	return pending, oldest, nil
}

// Finish deletes c's job record.
func (s *Store) Finish(ctx context.Context, c storage.Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.ID == "" {
		return nil
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return finishJob(tx, c) })
}

// Release hands c to Consume again: its holder in this process gave it up
// unfinished. Its record stays in the file, so a restart in between still
// finds it.
func (s *Store) Release(ctx context.Context, c storage.Claim) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.ID == "" {
		return nil
	}
	s.released.mu.Lock()
	s.released.claims = append(s.released.claims, c)
	s.released.mu.Unlock()
	select {
	case s.released.ready <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// releasedJobs are claims given back by their holders in this process,
// for Consume to hand out again.
type releasedJobs struct {
	mu     sync.Mutex
	claims []storage.Claim
	ready  chan struct{} // capacity 1: Consume has claims to take
}

func newReleasedJobs() releasedJobs { return releasedJobs{ready: make(chan struct{}, 1)} }

// take returns the claims released so far and forgets them.
func (r *releasedJobs) take() []storage.Claim {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.claims
	r.claims = nil
	return out
}

// Consume hands out the jobs an earlier run left in the file, and then
// those released in this run, running up to Config.Workers handlers at
// once, until ctx ends. Those are the only unfinished claims it can find: a
// job queued since Open is held by the request that queued it in this
// process, which runs and finishes it or releases it, and one store file
// serves one process. So from the file it hands out records up to the
// sequence the bucket had at Open, never later ones. Records stay in the
// file until handle (or anyone) finishes their claim, so a handler cut
// short leaves its job for the next run.
//
// A Store has one consumer: a second Consume while one runs fails. Consume
// returns ctx.Err() once ctx ends and every running handler has returned,
// or an error if the store fails or is closed.
func (s *Store) Consume(parent context.Context, handle func(context.Context, storage.Claim)) error {
	if !s.consuming.CompareAndSwap(false, true) {
		return errors.New("embedded store: Consume is already running on this store")
	}
	defer s.consuming.Store(false)

	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	var wg sync.WaitGroup
	err := s.dispatch(ctx, &wg, handle)
	stop(err) // a store failure also ends the running handlers
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// dispatch hands out the leftover jobs in sequence order, then the
// released ones as they come, until ctx ends or the store closes.
func (s *Store) dispatch(ctx context.Context, wg *sync.WaitGroup, handle func(context.Context, storage.Claim)) error {
	slots := make(chan struct{}, s.workers)
	var after uint64
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return errClosed
		}
		if ctx.Err() != nil {
			return nil
		}
		var (
			seq   uint64
			claim storage.Claim
			ok    bool
		)
		err := protect(func() (err error) { seq, claim, ok, err = s.nextLeftover(after); return err })
		if err != nil {
			s.log.Error("embedded store: reading leftover jobs failed", "file", s.path, "err", err)
			return err
		}
		if !ok {
			break
		}
		after = seq
		s.run(ctx, wg, slots, handle, claim)
	}
	<-slots // the slot taken for a leftover that was not there
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.closed:
			return errClosed
		case <-s.released.ready:
		}
		for _, claim := range s.released.take() {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return nil
			case <-s.closed:
				return errClosed
			}
			s.run(ctx, wg, slots, handle, claim)
		}
	}
}

// run handles claim in a goroutine holding one of slots.
func (s *Store) run(ctx context.Context, wg *sync.WaitGroup, slots chan struct{}, handle func(context.Context, storage.Claim), claim storage.Claim) {
	wg.Go(func() {
		defer func() { <-slots }()
		// A job that meets a damaged page is logged and left in the
		// file; the process, and its other work, carry on.
		if err := protect(func() error { handle(ctx, claim); return nil }); err != nil {
			s.log.Error("embedded store: job failed", "file", s.path, "job", claim.Job, "err", err)
		}
	})
}

// nextLeftover returns the first job record after sequence after, if it
// was in the file at Open.
func (s *Store) nextLeftover(after uint64) (seq uint64, c storage.Claim, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket([]byte(bucketJobs)).Cursor().Seek(seqKey(after + 1))
		if k == nil {
			return nil
		}
		seq = binary.BigEndian.Uint64(k)
		if seq > s.leftovers {
			return nil
		}
		ok, c.ID = true, claimID(seq)
		var r jobRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("embedded store: decode job %d: %w", seq, err)
		}
		c.Job = r.Job
		return nil
	})
	return seq, c, ok, err
}
