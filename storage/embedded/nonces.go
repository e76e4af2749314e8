package embedded

import (
	"context"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// minPruneAt is the map size below which expired nonces are not worth a
// sweep.
const minPruneAt = 1024

// nonces live in memory, not in the file. The embedded store serves one
// process, so no other replica needs to see them (decision 3 is about
// Redis), and writing each nonce would cost an fsync to issue it and
// another to consume it, more than the rest of a request. A restart
// forgets outstanding nonces; clients answer the badNonce that follows by
// retrying with a fresh one (RFC 8555 §6.5).
type nonces struct {
	mu sync.Mutex
	m  map[string]time.Time // nonce → expiry
	// pruneAt is the size at which the next sweep of expired nonces runs.
	// It doubles the live count after each sweep, so sweeps cost O(1) per
	// put amortised and no request pays for a scan of its own.
	pruneAt int
}

func newNonces() nonces {
	return nonces{m: make(map[string]time.Time), pruneAt: minPruneAt}
}

// PutNonce keeps nonce until expires; one already expired is not kept.
func (s *Store) PutNonce(ctx context.Context, nonce string, expires time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := &s.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	n.put(nonce, expires, s.now())
	return nil
}

// put keeps nonce unless it has expired; n.mu is held.
func (n *nonces) put(nonce string, expires, now time.Time) {
	if !now.Before(expires) {
		return
	}
	n.m[nonce] = expires
	if len(n.m) >= n.pruneAt {
		for k, exp := range n.m {
			if !now.Before(exp) {
				delete(n.m, k)
			}
		}
		n.pruneAt = max(2*len(n.m), minPruneAt)
	}
}

// ConsumeNonce removes the nonce, so under the lock it is accepted once,
// and keeps next.
func (s *Store) ConsumeNonce(ctx context.Context, nonce, next string, nextExpires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := s.now()
	n := &s.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	if next != "" {
		n.put(next, nextExpires, now)
	}
	exp, ok := n.m[nonce]
	if !ok {
		return false, nil
	}
	delete(n.m, nonce)
	return now.Before(exp), nil
}

// ConsumeNonceForAccount is ConsumeNonce, then the account and look's
// resources read in one transaction: a consistent snapshot, and nothing to
// save on round trips since both the nonces and the file are local.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	ok, err := s.ConsumeNonce(ctx, nonce, next, nextExpires)
	if err != nil {
		return storage.Found{}, err
	}
	f := storage.Found{NonceOK: ok}
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		if f.Account, err = load(tx, accounts, accountID); err != nil {
			return err
		}
		if f.Order, err = lookup(tx, orders, look.OrderID); err != nil {
			return err
		}
		if f.Authz, err = lookup(tx, authzs, look.AuthzID); err != nil {
			return err
		}
		f.Certificate, err = lookup(tx, certs, look.Serial)
		return err
	})
	if err != nil {
		return storage.Found{}, err
	}
	return f, nil
}

// lookup is load for a resource a request merely names: a missing one is
// nil, and the handler answers it as it sees fit.
func lookup[T any](tx *bolt.Tx, r resource[T], key string) (*T, error) {
	if key == "" {
		return nil, nil
	}
	raw := tx.Bucket([]byte(r.bucket)).Get([]byte(key))
	if raw == nil {
		return nil, nil
	}
	return decode(r, key, raw)
}
