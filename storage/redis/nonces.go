package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// nonceKeyKey holds the MAC key of one nonce epoch. It lives beside the
// spent nonces, without a hash tag: one small key per rotation.
func nonceKeyKey(epoch uint32) string {
	return prefix + "noncekey:" + strconv.FormatUint(uint64(epoch), 10)
}

// NonceKey reads the key of epoch, first storing candidate if there is
// one and the epoch has no key: SET NX and a GET in one pipeline, so
// every replica reads the key the first SET stored (nothing overwrites
// it). SET NX GET would do it in one command, but only from Redis 7.0.
func (s *Store) NonceKey(ctx context.Context, epoch uint32, candidate []byte, expires time.Time) ([]byte, error) {
	k := nonceKeyKey(epoch)
	var get *goredis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		if candidate != nil {
			p.SetNX(ctx, k, candidate, msDuration(s.ttlUntil(expires)))
		}
		get = p.Get(ctx, k)
		return nil
	})
	if errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("nonce key of epoch %d: %w", epoch, storage.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, "nonce key", err)
	}
	return get.Bytes()
}

// ConsumeNonce records the nonce as spent: SET NX is atomic, so of any
// number of replicas racing for it exactly one sets it.
func (s *Store) ConsumeNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	if nonce == "" || !s.now().Before(expires) {
		return false, nil
	}
	var spend *goredis.BoolCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		spend = s.queueSpend(ctx, p, nonce, expires)
		return nil
	})
	if err != nil {
		return false, fail(ctx, "consume nonce", err)
	}
	return spent(spend), nil
}

// ConsumeNonceForAccount adds to ConsumeNonce's pipeline the GETs of the
// account and of the resources look names (a certificate with its
// inventory entry, see Certificate; a blocked key).
func (s *Store) ConsumeNonceForAccount(ctx context.Context, nonce string, expires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	var found storage.Found
	var spend *goredis.BoolCmd
	var acct, order, authz, cert, entry, blocked *goredis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		spend = s.queueSpend(ctx, p, nonce, expires)
		acct = p.Get(ctx, accountKey(accountID))
		order = lookupGet(ctx, p, look.OrderID, orderKey)
		authz = lookupGet(ctx, p, look.AuthzID, authzKey)
		cert = lookupGet(ctx, p, look.Serial, certKey)
		if look.Serial != "" {
			entry = p.HGet(ctx, invKey("meta"), look.Serial)
		}
		blocked = lookupBlockedKey(ctx, p, look.KeyHash)
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
	if found.Certificate != nil {
		overlay(found.Certificate, entry.Val())
	}
	if found.BlockedKey, err = decodeBlockedKey(ctx, blocked, look.KeyHash); err != nil {
		return found, err
	}
	found.NonceOK = spent(spend)
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

// queueSpend adds to p the recording of nonce as spent until expires,
// unless there is no nonce or it has expired; the returned SET NX (nil
// then) says whether this call spent it.
func (s *Store) queueSpend(ctx context.Context, p goredis.Pipeliner, nonce string, expires time.Time) *goredis.BoolCmd {
	ttl := expires.Sub(s.now())
	if nonce == "" || ttl <= 0 {
		return nil
	}
	// PX rounds down to whole ms; a TTL under 1ms would be refused.
	return p.SetNX(ctx, nonceKey(nonce), "", max(ttl, time.Millisecond))
}

func spent(cmd *goredis.BoolCmd) bool { return cmd != nil && cmd.Val() }
