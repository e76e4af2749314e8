package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
)

// PutNonce keeps nonce until expires by the store's clock; Redis drops it
// then. One already expired is not kept, and not an error.
func (s *Store) PutNonce(ctx context.Context, nonce string, expires time.Time) error {
	return s.nonceOps(ctx, "", nonce, expires, nil)
}

// ConsumeNonce deletes the nonce: DEL is atomic, so of any number of
// replicas racing for it exactly one sees it deleted. The next nonce is set
// in the same pipeline.
func (s *Store) ConsumeNonce(ctx context.Context, nonce, next string, nextExpires time.Time) (bool, error) {
	var deleted int64
	err := s.nonceOps(ctx, nonce, next, nextExpires, &deleted)
	return deleted == 1, err
}

// nonceOps deletes used (if set, counting into deleted) and sets
// next (if set and unexpired) in one round trip.
func (s *Store) nonceOps(ctx context.Context, used, next string, nextExpires time.Time, deleted *int64) error {
	ttl := nextExpires.Sub(s.now())
	var del *goredis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if used != "" {
			del = p.Del(ctx, nonceKey(used))
		}
		if next != "" && ttl > 0 {
			// PX rounds down to whole ms; a TTL under 1ms would be refused.
			p.Set(ctx, nonceKey(next), "", max(ttl, time.Millisecond))
		}
		return nil
	})
	if err != nil {
		return fail(ctx, "nonce", err)
	}
	if del != nil && deleted != nil {
		*deleted = del.Val()
	}
	return nil
}

// ConsumeNonceForAccount pipelines the nonce exchange with the account's
// GET.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string) (bool, *acme.Account, error) {
	ttl := nextExpires.Sub(s.now())
	var del *goredis.IntCmd
	var get *goredis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		del = p.Del(ctx, nonceKey(nonce))
		if next != "" && ttl > 0 {
			p.Set(ctx, nonceKey(next), "", max(ttl, time.Millisecond))
		}
		get = p.Get(ctx, accountKey(accountID))
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, nil, fail(ctx, "nonce and account", err)
	}
	raw, err := get.Bytes()
	if errors.Is(err, goredis.Nil) {
		return false, nil, notFound("account", accountID)
	}
	if err != nil {
		return false, nil, fail(ctx, "get account", err)
	}
	acct, err := decode(accounts, accountID, raw)
	if err != nil {
		return false, nil, err
	}
	return del.Val() == 1, acct, nil
}
