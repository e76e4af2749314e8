package embedded

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

// minPruneAt is the map size below which expired entries are not worth a
// sweep.
const minPruneAt = 1024

// nonces keeps the nonce keys and the spent nonces in memory, not in the
// file. The embedded store serves one process, so no other replica needs
// either (decision 3 is about Redis), and writing each spent nonce would
// cost an fsync per request. The two go together: a restart forgets the
// keys, so every nonce issued before it fails its MAC, and forgetting
// which of them were spent lets none be replayed. Keeping the keys in the
// file would make the spent nonces need it too. Clients answer the
// badNonce after a restart by retrying with a fresh nonce (RFC 8555 §6.5).
type nonces struct {
	mu sync.Mutex
	// spent holds one entry per signed request in the nonce lifetime, so
	// its entries are kept small: the nonce and its expiry.
	spent expiring[string, struct{}]
	keys  expiring[uint32, []byte] // epoch → key
}

func newNonces() nonces {
	return nonces{spent: newExpiring[string, struct{}](), keys: newExpiring[uint32, []byte]()}
}

// expiring is a map whose entries go at their expiry.
type expiring[K comparable, V any] struct {
	m map[K]expiringEntry[V]
	// pruneAt is the size at which the next sweep of expired entries runs.
	// It doubles the live count after each sweep, so sweeps cost O(1) per
	// put amortised and no request pays for a scan of its own.
	pruneAt int
}

type expiringEntry[V any] struct {
	val     V
	expires int64 // Unix ns
}

func newExpiring[K comparable, V any]() expiring[K, V] {
	return expiring[K, V]{m: make(map[K]expiringEntry[V]), pruneAt: minPruneAt}
}

// get returns k's value if it has not expired at now.
func (e *expiring[K, V]) get(k K, now time.Time) (V, bool) {
	v, ok := e.m[k]
	if !ok || now.UnixNano() >= v.expires {
		var zero V
		return zero, false
	}
	return v.val, true
}

// put keeps k until expires, unless that has passed.
func (e *expiring[K, V]) put(k K, val V, expires, now time.Time) {
	if !now.Before(expires) {
		return
	}
	e.m[k] = expiringEntry[V]{val: val, expires: expires.UnixNano()}
	if len(e.m) >= e.pruneAt {
		at := now.UnixNano()
		for k, v := range e.m {
			if at >= v.expires {
				delete(e.m, k)
			}
		}
		e.pruneAt = max(2*len(e.m), minPruneAt)
	}
}

// NonceKey is the set-if-absent of the contract over this process's
// memory.
func (s *Store) NonceKey(ctx context.Context, epoch uint32, candidate []byte, expires time.Time) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	n := &s.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	if key, ok := n.keys.get(epoch, now); ok {
		return key, nil
	}
	if candidate == nil {
		return nil, fmt.Errorf("nonce key of epoch %d: %w", epoch, storage.ErrNotFound)
	}
	key := bytes.Clone(candidate)
	// A key asked for past its expiry is still kept a minute, as on
	// Redis, so that the caller can read it back.
	if soon := now.Add(time.Minute); expires.Before(soon) {
		expires = soon
	}
	n.keys.put(epoch, key, expires, now)
	return key, nil
}

// ConsumeNonce records the nonce spent; under the lock, once.
func (s *Store) ConsumeNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if nonce == "" {
		return false, nil
	}
	now := s.now()
	if !now.Before(expires) {
		return false, nil
	}
	n := &s.nonces
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.spent.get(nonce, now); ok {
		return false, nil
	}
	n.spent.put(nonce, struct{}{}, expires, now)
	return true, nil
}

// ConsumeNonceForAccount is ConsumeNonce, then the account and look's
// resources read in one transaction: a consistent snapshot, and nothing to
// save on round trips since both the nonces and the file are local.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce string, expires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	ok, err := s.ConsumeNonce(ctx, nonce, expires)
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
		if f.Certificate, err = lookup(tx, certs, look.Serial); err != nil {
			return err
		}
		f.BlockedKey, err = lookupBlockedKey(tx, look.KeyHash)
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
