package embedded

import (
	"context"
	"github.com/acmed/acmed/acme"
	"sync"
	"time"
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

// ConsumeNonceForAccount is ConsumeNonce then Account: both are local, so
// there is no round trip to save.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string) (bool, *acme.Account, error) {
	ok, err := s.ConsumeNonce(ctx, nonce, next, nextExpires)
	if err != nil {
		return false, nil, err
	}
	acct, err := s.Account(ctx, accountID)
	if err != nil {
		return false, nil, err
	}
	return ok, acct, nil
}
