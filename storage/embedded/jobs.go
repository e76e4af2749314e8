package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// Enqueue commits j to the file before returning, so it survives a crash,
// and wakes Consume.
func (s *Store) Enqueue(ctx context.Context, j storage.Job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("embedded store: encode job: %w", err)
	}
	err = s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketJobs))
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return b.Put(seqKey(seq), raw)
	})
	if err != nil {
		return err
	}
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending; it will find this job too
	}
	return nil
}

// Consume first hands out the jobs left in the file by an earlier run, then
// new ones as they are enqueued, running up to Config.Workers handlers at
// once. A job is deleted when its handler returns, except when ctx had
// ended by then: the handler may have given up half way, so the job stays
// and the next Consume (after a restart) runs it again. Handlers must
// therefore tolerate running a job twice.
//
// A Store has one consumer: a second Consume while one runs fails. Consume
// returns ctx.Err() once ctx ends and every running handler has returned,
// or an error if the store fails or is closed.
func (s *Store) Consume(parent context.Context, handle func(context.Context, storage.Job)) error {
	if !s.consuming.CompareAndSwap(false, true) {
		return errors.New("embedded store: Consume is already running on this store")
	}
	defer s.consuming.Store(false)

	ctx, stop := context.WithCancelCause(parent)
	defer stop(nil)
	var wg sync.WaitGroup
	err := s.dispatch(ctx, stop, &wg, handle)
	stop(err) // a store failure also ends the running handlers
	wg.Wait()
	if err := parent.Err(); err != nil {
		return err
	}
	return context.Cause(ctx)
}

// dispatch hands out jobs until ctx ends or the store fails. Jobs stay in
// the bucket while they run, so it tracks the last sequence handed out to
// skip them; new jobs always sort after it.
func (s *Store) dispatch(ctx context.Context, stop context.CancelCauseFunc, wg *sync.WaitGroup, handle func(context.Context, storage.Job)) error {
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
		seq, job, ok, err := s.nextJob(after)
		if err != nil {
			return err
		}
		if !ok {
			<-slots
			select {
			case <-s.wake:
				continue
			case <-ctx.Done():
				return nil
			case <-s.closed:
				return errClosed
			}
		}
		after = seq
		wg.Go(func() {
			defer func() { <-slots }()
			handle(ctx, job)
			if ctx.Err() != nil {
				return
			}
			if err := s.deleteJob(seq); err != nil {
				stop(fmt.Errorf("embedded store: delete job %d: %w", seq, err))
			}
		})
	}
}

func (s *Store) nextJob(after uint64) (seq uint64, job storage.Job, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k, v := tx.Bucket([]byte(bucketJobs)).Cursor().Seek(seqKey(after + 1))
		if k == nil {
			return nil
		}
		seq, ok = binary.BigEndian.Uint64(k), true
		if err := json.Unmarshal(v, &job); err != nil {
			return fmt.Errorf("embedded store: decode job %d: %w", seq, err)
		}
		return nil
	})
	return seq, job, ok, err
}

func (s *Store) deleteJob(seq uint64) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketJobs)).Delete(seqKey(seq))
	})
}
