package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// issuersKey holds the CA's issuer set (storage.IssuerSet) as JSON, with
// no TTL: like caKey it outlives every certificate. One key, so a
// compare-and-set is one script on any server or Cluster slot.
const issuersKey = prefix + "issuers"

// issuersCAS sets KEYS[1] to ARGV[2] if it still holds ARGV[1] ("" for
// absent).
var issuersCAS = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or ''
if cur == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2])
	return 1
end
return 0`)

// maxIssuerTries bounds UpdateIssuers' retries; only operators write the
// set, so losing a race even twice is rare.
const maxIssuerTries = 10

func (s *Store) Issuers(ctx context.Context) (*storage.IssuerSet, error) {
	set, _, err := s.issuers(ctx)
	return set, err
}

func (s *Store) issuers(ctx context.Context) (*storage.IssuerSet, string, error) {
	raw, err := s.rdb.Get(ctx, issuersKey).Result()
	if errors.Is(err, goredis.Nil) {
		return &storage.IssuerSet{}, "", nil
	}
	if err != nil {
		return nil, "", fail(ctx, "get the issuer set", err)
	}
	set := &storage.IssuerSet{}
	if err := json.Unmarshal([]byte(raw), set); err != nil {
		return nil, "", fmt.Errorf("redis: key %s: decode the issuer set: %w", issuersKey, err)
	}
	return set, raw, nil
}

func (s *Store) UpdateIssuers(ctx context.Context, fn func(*storage.IssuerSet) error) (*storage.IssuerSet, error) {
	for range maxIssuerTries {
		cur, raw, err := s.issuers(ctx)
		if err != nil {
			return nil, err
		}
		next := cur.Clone()
		if err := fn(next); err != nil {
			return nil, err
		}
		next.Revision = cur.Revision + 1
		enc, err := json.Marshal(next)
		if err != nil {
			return nil, fmt.Errorf("redis: encode the issuer set: %w", err)
		}
		// Durably (WAIT, as --min-replicas asks): a rotation a
		// failover lost would orphan what the new intermediate signed.
		ok, err := s.evalDurably(ctx, issuersCAS, []string{issuersKey}, raw, enc).Int()
		if err != nil {
			return nil, fail(ctx, "update the issuer set", err)
		}
		if ok == 1 {
			return next, nil
		}
	}
	return nil, fmt.Errorf("%w: the issuer set changed under every one of %d tries", storage.ErrUnavailable, maxIssuerTries)
}
