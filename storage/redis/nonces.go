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
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		s.queueNonces(ctx, p, "", nonce, expires)
		return nil
	})
	if err != nil {
		return fail(ctx, "put nonce", err)
	}
	return nil
}

// ConsumeNonce deletes the nonce: DEL is atomic, so of any number of
// replicas racing for it exactly one sees it deleted. The next nonce is set
// in the same pipeline.
func (s *Store) ConsumeNonce(ctx context.Context, nonce, next string, nextExpires time.Time) (bool, error) {
	var del *goredis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		del = s.queueNonces(ctx, p, nonce, next, nextExpires)
		return nil
	})
	if err != nil {
		return false, fail(ctx, "consume nonce", err)
	}
	return del != nil && del.Val() == 1, nil
}

// ConsumeNonceForAccount adds the account's GET to ConsumeNonce's pipeline.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string) (bool, *acme.Account, error) {
	var del *goredis.IntCmd
	var get *goredis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		del = s.queueNonces(ctx, p, nonce, next, nextExpires)
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
	return del != nil && del.Val() == 1, acct, nil
}

// queueNonces adds to p the deletion of used, when set (the returned DEL
// says whether it existed), and keeping next until nextExpires, when set
// and not yet expired.
func (s *Store) queueNonces(ctx context.Context, p goredis.Pipeliner, used, next string, nextExpires time.Time) *goredis.IntCmd {
	var del *goredis.IntCmd
	if used != "" {
		del = p.Del(ctx, nonceKey(used))
	}
	if ttl := nextExpires.Sub(s.now()); next != "" && ttl > 0 {
		// PX rounds down to whole ms; a TTL under 1ms would be refused.
		p.Set(ctx, nonceKey(next), "", max(ttl, time.Millisecond))
	}
	return del
}
