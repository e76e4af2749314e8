package redis

import (
	"context"
	"time"
)

// PutNonce keeps nonce until expires by the store's clock; Redis drops it
// then. One already expired is not kept, and not an error.
func (s *Store) PutNonce(ctx context.Context, nonce string, expires time.Time) error {
	ttl := expires.Sub(s.now())
	if ttl <= 0 {
		return nil
	}
	// PX rounds down to whole ms; a TTL under 1ms would be refused.
	if err := s.rdb.Set(ctx, nonceKey(nonce), "", max(ttl, time.Millisecond)).Err(); err != nil {
		return fail(ctx, "put nonce", err)
	}
	return nil
}

// ConsumeNonce deletes the nonce: DEL is atomic, so of any number of
// replicas racing for it exactly one sees it deleted.
func (s *Store) ConsumeNonce(ctx context.Context, nonce string) (bool, error) {
	n, err := s.rdb.Del(ctx, nonceKey(nonce)).Result()
	if err != nil {
		return false, fail(ctx, "consume nonce", err)
	}
	return n == 1, nil
}
