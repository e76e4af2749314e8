package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/record"
)

// resource describes one kind of record (storage/record) kept in its own
// bucket.
type resource[T any] struct {
	bucket string
	name   string // for error messages
	key    func(*T) string
}

func notFound(name, key string) error {
	return fmt.Errorf("%w: %s %q", storage.ErrNotFound, name, key)
}

func conflict(name, key string) error {
	return fmt.Errorf("%w: %s %q exists", storage.ErrConflict, name, key)
}

func load[T any](tx *bolt.Tx, r resource[T], key string) (*T, error) {
	raw := tx.Bucket([]byte(r.bucket)).Get([]byte(key))
	if raw == nil {
		return nil, notFound(r.name, key)
	}
	return decode[T](r, key, raw)
}

// decode copies out of raw, which bbolt reclaims when the transaction ends.
func decode[T any](r resource[T], key string, raw []byte) (*T, error) {
	v := new(T)
	if err := record.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("embedded store: decode %s %q: %w", r.name, key, err)
	}
	return v, nil
}

func encode[T any](r resource[T], key string, v *T) ([]byte, error) {
	raw, err := record.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("embedded store: encode %s %q: %w", r.name, key, err)
	}
	return raw, nil
}

func get[T any](ctx context.Context, s *Store, r resource[T], key string) (*T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var v *T
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = load(tx, r, key)
		return err
	})
	return v, err
}

// create stores v unless its key is taken; index, if not nil, runs in the
// same transaction.
func create[T any](ctx context.Context, s *Store, r resource[T], v *T, index func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error {
		return insert(tx, r, v, index)
	})
}

func insert[T any](tx *bolt.Tx, r resource[T], v *T, index func(*bolt.Tx) error) error {
	key := r.key(v)
	b := tx.Bucket([]byte(r.bucket))
	if b.Get([]byte(key)) != nil {
		return conflict(r.name, key)
	}
	if index != nil {
		if err := index(tx); err != nil {
			return err
		}
	}
	raw, err := encode(r, key, v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// update is the compare-and-set behind every UpdateX. bbolt admits one
// write transaction at a time, so reading, calling fn and writing inside one
// transaction leaves no gap for another writer: no retry loop is needed, and
// opts.From is ignored, as the local read it would save is what makes the
// update atomic.
// fn runs on a copy nobody else sees; it may run twice when bbolt re-runs a
// failed batch alone, which the contract allows (fn is pure). reindex, if not
// nil, keeps indexes in step with the change in the same transaction. An
// error from fn is returned as is, and bbolt rolls the transaction back.
//
// An fn that leaves the record as it was writes nothing, so it neither
// reindexes nor queues nor stores opts.Certificate; opts.Finish is done
// either way. A record an earlier acmed stored as JSON stays so until an
// update changes it.
func update[T any](ctx context.Context, s *Store, r resource[T], key string, fn func(*T) error, reindex func(tx *bolt.Tx, old, cur *T) error, opts storage.Options) (*T, error) {
	if opts.Claimed != nil {
		// A Claim variable used twice must not keep the first claim.
		*opts.Claimed = storage.Claim{}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *T
	var queued uint64 // 0: no job queued; bucket sequences start at 1
	var wrote bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		// A batch that fails is re-run, and what this run set must not
		// survive into the next (its sequence was rolled back).
		out, queued, wrote = nil, 0, false
		b := tx.Bucket([]byte(r.bucket))
		raw := b.Get([]byte(key))
		if raw == nil {
			return notFound(r.name, key)
		}
		cur, err := decode(r, key, raw)
		if err != nil {
			return err
		}
		was, err := record.Baseline(raw, cur)
		if err != nil {
			return fmt.Errorf("embedded store: encode %s %q: %w", r.name, key, err)
		}
		if err := fn(cur); err != nil {
			return err
		}
		if r.key(cur) != key {
			return fmt.Errorf("embedded store: update %s %q: fn changed its key to %q", r.name, key, r.key(cur))
		}
		enc, err := encode(r, key, cur)
		if err != nil {
			return err
		}
		if !bytes.Equal(enc, was) {
			if queued, err = write(tx, s.now, r, key, raw, enc, cur, reindex, opts); err != nil {
				return err
			}
			wrote = true
		}
		if opts.Finish != nil {
			if err := finishJob(tx, *opts.Finish); err != nil {
				return err
			}
		}
		out = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opts.Claimed != nil && queued != 0 {
		*opts.Claimed = storage.Claim{Job: *opts.Queue, ID: claimID(queued)}
	}
	if wrote && len(opts.Spend) > 0 {
		s.limits.spend(opts.SpendAt.UnixMicro(), opts.Spend) // in memory: after the commit
	}
	return out, nil
}

// write stores enc, the encoding of cur that replaces raw, with what comes
// with a write: the reindex, opts.Certificate (with its inventory entries
// and replacement: insertCert) and opts.Queue. It returns the
// queued job's sequence, or 0. All in the caller's transaction: a resource
// moved to processing and its job are committed together or not at all.
func write[T any](tx *bolt.Tx, now func() time.Time, r resource[T], key string, raw, enc []byte, cur *T, reindex func(tx *bolt.Tx, old, cur *T) error, opts storage.Options) (uint64, error) {
	if reindex != nil {
		old, err := decode(r, key, raw)
		if err != nil {
			return 0, err
		}
		if err := reindex(tx, old, cur); err != nil {
			return 0, err
		}
	}
	if err := tx.Bucket([]byte(r.bucket)).Put([]byte(key), enc); err != nil {
		return 0, err
	}
	if opts.Certificate != nil {
		if err := insertCert(tx, opts.Certificate, now()); err != nil {
			return 0, err
		}
	}
	if opts.Queue == nil {
		return 0, nil
	}
	return queueJob(tx, *opts.Queue, now())
}

// seqKey encodes a bucket sequence big-endian so keys sort in the order
// they were issued.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}
