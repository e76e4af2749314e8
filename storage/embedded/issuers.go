package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// bucketIssuers holds the CA's issuer set (storage.IssuerSet) as JSON
// under issuersKey: an operator record, small and rarely written. It is
// created by the first update, so stores from before rotation need no
// migration.
const (
	bucketIssuers = "issuers"
	issuersKey    = "set"
)

func (s *Store) Issuers(ctx context.Context) (*storage.IssuerSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var set *storage.IssuerSet
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		set, err = loadIssuers(tx)
		return err
	})
	return set, err
}

func loadIssuers(tx *bolt.Tx) (*storage.IssuerSet, error) {
	set := &storage.IssuerSet{}
	b := tx.Bucket([]byte(bucketIssuers))
	if b == nil {
		return set, nil
	}
	raw := b.Get([]byte(issuersKey))
	if raw == nil {
		return set, nil
	}
	if err := json.Unmarshal(raw, set); err != nil {
		return nil, fmt.Errorf("embedded: decode the issuer set: %w", err)
	}
	return set, nil
}

// UpdateIssuers needs no retry: bbolt runs one write transaction at a
// time, so nothing changes the set between the read and the write.
func (s *Store) UpdateIssuers(ctx context.Context, fn func(*storage.IssuerSet) error) (*storage.IssuerSet, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *storage.IssuerSet
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := loadIssuers(tx)
		if err != nil {
			return err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return err
		}
		next.Revision = cur.Revision + 1
		raw, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("embedded: encode the issuer set: %w", err)
		}
		b, err := tx.CreateBucketIfNotExists([]byte(bucketIssuers))
		if err != nil {
			return err
		}
		out = next
		return b.Put([]byte(issuersKey), raw)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
