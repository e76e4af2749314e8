package redis

import (
	"context"
	"errors"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
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

// ConsumeNonceForAccount adds to ConsumeNonce's pipeline the GETs of the
// account and of the resources look names.
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	var found storage.Found
	var del *goredis.IntCmd
	var acct, order, authz, cert *goredis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		del = s.queueNonces(ctx, p, nonce, next, nextExpires)
		acct = p.Get(ctx, accountKey(accountID))
		order = lookupGet(ctx, p, look.OrderID, orderKey)
		authz = lookupGet(ctx, p, look.AuthzID, authzKey)
		cert = lookupGet(ctx, p, look.Serial, certKey)
		return nil
	})
	if err != nil && !errors.Is(err, goredis.Nil) {
		return found, fail(ctx, "nonce and account", err)
	}
	if found.Account, err = lookupDecode(ctx, acct, accounts, accountID); err != nil {
		return found, err
	}
	if found.Account == nil {
		return found, notFound("account", accountID)
	}
	if found.Order, err = lookupDecode(ctx, order, orders, look.OrderID); err != nil {
		return found, err
	}
	if found.Authz, err = lookupDecode(ctx, authz, authzs, look.AuthzID); err != nil {
		return found, err
	}
	if found.Certificate, err = lookupDecode(ctx, cert, certs, look.Serial); err != nil {
		return found, err
	}
	found.NonceOK = del != nil && del.Val() == 1
	return found, nil
}

// lookupGet queues the GET of a looked-up resource, if id names one.
func lookupGet(ctx context.Context, p goredis.Pipeliner, id string, key func(string) string) *goredis.StringCmd {
	if id == "" {
		return nil
	}
	return p.Get(ctx, key(id))
}

// lookupDecode reads what lookupGet queued: nil if nothing was queued or
// the key is missing.
func lookupDecode[T any](ctx context.Context, cmd *goredis.StringCmd, r resource[T], id string) (*T, error) {
	if cmd == nil {
		return nil, nil
	}
	raw, err := cmd.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(ctx, "get "+r.name, err)
	}
	return decode(r, id, raw)
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
