package embedded

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// bucketBlockedKeys holds storage.BlockedKey as JSON by key hash: a few
// small records, written only by keyCompromise revocations and never
// swept.
const bucketBlockedKeys = "blocked-keys"

func (s *Store) BlockKey(ctx context.Context, k storage.BlockedKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return putBlockedKey(tx, k) })
}

func (s *Store) BlockedKey(ctx context.Context, hash string) (*storage.BlockedKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var k *storage.BlockedKey
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		k, err = lookupBlockedKey(tx, hash)
		return err
	})
	if err == nil && k == nil {
		err = notFound("blocked key", hash)
	}
	return k, err
}

// putBlockedKey records k unless its key is there already: the first
// record stays.
func putBlockedKey(tx *bolt.Tx, k storage.BlockedKey) error {
	b := tx.Bucket([]byte(bucketBlockedKeys))
	if b.Get([]byte(k.Hash)) != nil {
		return nil
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("embedded store: encode blocked key: %w", err)
	}
	return b.Put([]byte(k.Hash), raw)
}

// lookupBlockedKey is nil for a key not blocked (or no hash).
func lookupBlockedKey(tx *bolt.Tx, hash string) (*storage.BlockedKey, error) {
	if hash == "" {
		return nil, nil
	}
	raw := tx.Bucket([]byte(bucketBlockedKeys)).Get([]byte(hash))
	if raw == nil {
		return nil, nil
	}
	var k storage.BlockedKey
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("embedded store: decode blocked key %q: %w", hash, err)
	}
	return &k, nil
}
