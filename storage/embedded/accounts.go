package embedded

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var accounts = resource[acme.Account]{
	bucket: bucketAccounts,
	name:   "account",
	key:    func(a *acme.Account) string { return a.ID },
}

// CreateAccount stores a, failing with storage.ErrConflict when its ID or
// key thumbprint is taken.
func (s *Store) CreateAccount(ctx context.Context, a *acme.Account) error {
	return create(ctx, s, accounts, a, func(tx *bolt.Tx) error {
		return claimKey(tx, a.KeyThumbprint, a.ID)
	})
}

func (s *Store) Account(ctx context.Context, id string) (*acme.Account, error) {
	return get(ctx, s, accounts, id)
}

func (s *Store) AccountByKey(ctx context.Context, thumbprint string) (*acme.Account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *acme.Account
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket([]byte(bucketAccountKeys)).Get([]byte(thumbprint))
		if id == nil {
			return notFound("account key", thumbprint)
		}
		var err error
		a, err = load(tx, accounts, string(id))
		return err
	})
	return a, err
}

func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*acme.Account) error) (*acme.Account, error) {
	return update(ctx, s, accounts, id, fn, func(tx *bolt.Tx, old, cur *acme.Account) error {
		if old.KeyThumbprint == cur.KeyThumbprint {
			return nil
		}
		if err := claimKey(tx, cur.KeyThumbprint, id); err != nil {
			return err
		}
		keys := tx.Bucket([]byte(bucketAccountKeys))
		if old.KeyThumbprint != "" && string(keys.Get([]byte(old.KeyThumbprint))) == id {
			return keys.Delete([]byte(old.KeyThumbprint))
		}
		return nil
	}, storage.Options{})
}

// claimKey points thumbprint at account id unless another account holds
// it. An account without a key has nothing to be found by.
func claimKey(tx *bolt.Tx, thumbprint, id string) error {
	if thumbprint == "" {
		return nil
	}
	keys := tx.Bucket([]byte(bucketAccountKeys))
	if owner := keys.Get([]byte(thumbprint)); owner != nil && string(owner) != id {
		return conflict("account key", thumbprint)
	}
	return keys.Put([]byte(thumbprint), []byte(id))
}

// ListAccounts walks the accounts bucket from cursor: bbolt keeps keys
// sorted, so a page costs a seek and limit steps.
func (s *Store) ListAccounts(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("embedded: list accounts: limit %d is not positive", limit)
	}
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketAccounts)).Cursor()
		k, _ := c.First()
		if cursor != "" {
			k, _ = c.Seek([]byte(cursor))
			if k != nil && string(k) == cursor {
				k, _ = c.Next()
			}
		}
		for ; k != nil && len(ids) <= limit; k, _ = c.Next() {
			ids = append(ids, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	if len(ids) > limit {
		return ids[:limit], ids[limit-1], nil
	}
	return ids, "", nil
}
