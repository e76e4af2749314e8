package embedded

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// resource describes one kind of record kept as JSON in its own bucket.
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

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("embedded store: encode %s: %w", key, err)
	}
	return b.Put([]byte(key), raw)
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
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("embedded store: decode %s %q: %w", r.name, key, err)
	}
	return v, nil
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
	return putJSON(b, key, v)
}

// update is the compare-and-set behind every UpdateX. bbolt admits one
// write transaction at a time, so reading, calling fn and writing inside one
// transaction leaves no gap for another writer, and no retry loop is
// needed. fn runs on a copy nobody else sees; it may run twice when bbolt
// re-runs a failed batch alone, which the contract allows (fn is pure). reindex, if not nil, keeps
// indexes in step with the change in the same transaction. An error from fn
// is returned as is, and bbolt rolls the transaction back.
func update[T any](ctx context.Context, s *Store, r resource[T], key string, fn func(*T) error, reindex func(tx *bolt.Tx, old, cur *T) error) (*T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *T
	err := s.db.Batch(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(r.bucket))
		raw := b.Get([]byte(key))
		if raw == nil {
			return notFound(r.name, key)
		}
		cur, err := decode(r, key, raw)
		if err != nil {
			return err
		}
		if err := fn(cur); err != nil {
			return err
		}
		if r.key(cur) != key {
			return fmt.Errorf("embedded store: update %s %q: fn changed its key to %q", r.name, key, r.key(cur))
		}
		if reindex != nil {
			old, err := decode(r, key, raw)
			if err != nil {
				return err
			}
			if err := reindex(tx, old, cur); err != nil {
				return err
			}
		}
		if err := putJSON(b, key, cur); err != nil {
			return err
		}
		out = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// seqKey encodes a bucket sequence big-endian so keys sort in the order
// they were issued.
func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}
