package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// EAB keys live under one hash tag, {eab}, so that a key and the list of
// kids share a Cluster slot and are written in one MULTI. They are JSON
// (operator records, few and rarely written) and have no TTL: an expired
// key still names the policy of the accounts bound to it.
const eabKidsKey = prefix + "{eab}:kids"

func eabKey(kid string) string { return prefix + "{eab}:key:" + kid }

// eabCAS sets KEYS[1] to ARGV[2] if it still holds ARGV[1].
var eabCAS = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
	redis.call('SET', KEYS[1], ARGV[2])
	return 1
end
return 0`)

func (s *Store) CreateEABKey(ctx context.Context, k *acme.EABKey) error {
	raw, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("redis: encode EAB key: %w", err)
	}
	var set *goredis.BoolCmd
	_, err = s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		set = p.SetNX(ctx, eabKey(k.KID), raw, 0)
		p.SAdd(ctx, eabKidsKey, k.KID)
		return nil
	})
	if err != nil {
		return fail(ctx, "create EAB key", err)
	}
	if !set.Val() {
		return conflict("EAB key", k.KID)
	}
	return nil
}

func (s *Store) EABKey(ctx context.Context, kid string) (*acme.EABKey, error) {
	k, _, err := s.eabKey(ctx, kid)
	return k, err
}

func (s *Store) eabKey(ctx context.Context, kid string) (*acme.EABKey, []byte, error) {
	raw, err := s.rdb.Get(ctx, eabKey(kid)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil, notFound("EAB key", kid)
	}
	if err != nil {
		return nil, nil, fail(ctx, "get EAB key", err)
	}
	k := new(acme.EABKey)
	if err := json.Unmarshal(raw, k); err != nil {
		return nil, nil, fmt.Errorf("redis: decode EAB key %q: %w", kid, err)
	}
	return k, raw, nil
}

// ListEABKeys reads the kids, then each key: an admin call, not the hot path.
func (s *Store) ListEABKeys(ctx context.Context) ([]*acme.EABKey, error) {
	kids, err := s.rdb.SMembers(ctx, eabKidsKey).Result()
	if err != nil {
		return nil, fail(ctx, "list EAB keys", err)
	}
	sort.Strings(kids)
	keys := make([]*acme.EABKey, 0, len(kids))
	for _, kid := range kids {
		k, err := s.EABKey(ctx, kid)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func (s *Store) UpdateEABKey(ctx context.Context, kid string, fn func(*acme.EABKey) error) (*acme.EABKey, error) {
	for range maxTries {
		k, raw, err := s.eabKey(ctx, kid)
		if err != nil {
			return nil, err
		}
		if err := fn(k); err != nil {
			return nil, err
		}
		k.KID = kid
		next, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("redis: encode EAB key: %w", err)
		}
		if string(next) == string(raw) {
			return k, nil
		}
		ok, err := eabCAS.Run(ctx, s.rdb, []string{eabKey(kid)}, raw, next).Int()
		if err != nil {
			return nil, fail(ctx, "update EAB key", err)
		}
		if ok == 1 {
			return k, nil
		}
	}
	return nil, fmt.Errorf("redis: update EAB key %q: %w", kid, storage.ErrUnavailable)
}
