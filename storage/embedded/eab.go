package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
)

// bucketEAB holds EAB keys as JSON by kid: operator records, few and
// rarely written, so the compact record format buys nothing. It is created
// by the first key, so stores written before keys existed need no
// migration.
const bucketEAB = "eab-keys"

func (s *Store) CreateEABKey(ctx context.Context, k *acme.EABKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("embedded: encode EAB key: %w", err)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists([]byte(bucketEAB))
		if err != nil {
			return err
		}
		if b.Get([]byte(k.KID)) != nil {
			return conflict("EAB key", k.KID)
		}
		return b.Put([]byte(k.KID), raw)
	})
}

func (s *Store) EABKey(ctx context.Context, kid string) (*acme.EABKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var k *acme.EABKey
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		k, err = loadEAB(tx, kid)
		return err
	})
	return k, err
}

func loadEAB(tx *bolt.Tx, kid string) (*acme.EABKey, error) {
	b := tx.Bucket([]byte(bucketEAB))
	var raw []byte
	if b != nil {
		raw = b.Get([]byte(kid))
	}
	if raw == nil {
		return nil, notFound("EAB key", kid)
	}
	k := new(acme.EABKey)
	if err := json.Unmarshal(raw, k); err != nil {
		return nil, fmt.Errorf("embedded: decode EAB key %q: %w", kid, err)
	}
	return k, nil
}

func (s *Store) ListEABKeys(ctx context.Context) ([]*acme.EABKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var keys []*acme.EABKey
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketEAB))
		if b == nil {
			return nil
		}
		return b.ForEach(func(kid, _ []byte) error {
			k, err := loadEAB(tx, string(kid))
			keys = append(keys, k)
			return err
		})
	})
	return keys, err
}

// UpdateEABKey runs fn in a write transaction, which bbolt serialises:
// no retry is needed.
func (s *Store) UpdateEABKey(ctx context.Context, kid string, fn func(*acme.EABKey) error) (*acme.EABKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out *acme.EABKey
	err := s.db.Update(func(tx *bolt.Tx) error {
		k, err := loadEAB(tx, kid)
		if err != nil {
			return err
		}
		old, _ := json.Marshal(k)
		if err := fn(k); err != nil {
			return err
		}
		k.KID = kid
		raw, err := json.Marshal(k)
		if err != nil {
			return err
		}
		out = k
		if bytes.Equal(old, raw) {
			return nil
		}
		return tx.Bucket([]byte(bucketEAB)).Put([]byte(kid), raw)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
