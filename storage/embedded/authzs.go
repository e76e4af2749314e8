package embedded

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var authzs = resource[acme.Authorization]{
	bucket: bucketAuthzs,
	name:   "authorization",
	key:    func(a *acme.Authorization) string { return a.ID },
}

func (s *Store) Authorization(ctx context.Context, id string) (*acme.Authorization, error) {
	return get(ctx, s, authzs, id)
}

// Authorizations reads them all in one transaction, so they are a
// consistent snapshot.
func (s *Store) Authorizations(ctx context.Context, ids []string) ([]*acme.Authorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]*acme.Authorization, 0, len(ids))
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, id := range ids {
			a, err := load(tx, authzs, id)
			if err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Store) UpdateAuthorization(ctx context.Context, id string, fn func(*acme.Authorization) error, opts ...storage.Option) (*acme.Authorization, error) {
	return update(ctx, s, authzs, id, fn, indexValid, storage.Apply(opts))
}

// ValidAuthorization follows the index and, should the authorization have
// left valid since, reports none rather than one that may not be reused.
func (s *Store) ValidAuthorization(ctx context.Context, accountID string, ident acme.Identifier, wildcard bool) (*acme.Authorization, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := validKey(accountID, ident, wildcard)
	var a *acme.Authorization
	err := s.db.View(func(tx *bolt.Tx) error {
		id := tx.Bucket([]byte(bucketValidAuthzs)).Get(key)
		if id == nil {
			return notFound("valid authorization for", ident.Value)
		}
		var err error
		a, err = load(tx, authzs, string(id))
		if err != nil {
			return err
		}
		if a.Status != acme.StatusValid {
			return notFound("valid authorization for", ident.Value)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// indexValid records cur as the latest valid authorization for its
// account, identifier and wildcard flag. When an authorization leaves valid
// (deactivated, revoked) its entry goes, unless a later one has replaced it.
// old is nil for a new authorization.
func indexValid(tx *bolt.Tx, old, cur *acme.Authorization) error {
	index := tx.Bucket([]byte(bucketValidAuthzs))
	curKey := validKey(cur.AccountID, cur.Identifier, cur.Wildcard)
	if old != nil && old.Status == acme.StatusValid {
		oldKey := validKey(old.AccountID, old.Identifier, old.Wildcard)
		if string(index.Get(oldKey)) == old.ID && (cur.Status != acme.StatusValid || string(oldKey) != string(curKey)) {
			if err := index.Delete(oldKey); err != nil {
				return err
			}
		}
	}
	if cur.Status != acme.StatusValid {
		return nil
	}
	return index.Put(curKey, []byte(cur.ID))
}

// validKey joins its parts with zero bytes, which none of them contain.
func validKey(accountID string, ident acme.Identifier, wildcard bool) []byte {
	k := make([]byte, 0, len(accountID)+len(ident.Type)+len(ident.Value)+4)
	k = append(k, accountID...)
	k = append(k, 0)
	k = append(k, ident.Type...)
	k = append(k, 0)
	k = append(k, ident.Value...)
	k = append(k, 0)
	if wildcard {
		return append(k, '1')
	}
	return append(k, '0')
}
