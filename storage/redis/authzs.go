package redis

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var authzs = resource[acme.Authorization]{
	name: "authorization",
	key:  authzKey,
	id:   func(a *acme.Authorization) string { return a.ID },
}

func (s *Store) Authorization(ctx context.Context, id string) (*acme.Authorization, error) {
	return get(ctx, s, authzs, id)
}

// Authorizations reads all in one round trip: MGET when they share a slot
// (an order's do), else a pipeline. MGET is also a consistent snapshot.
func (s *Store) Authorizations(ctx context.Context, ids []string) ([]*acme.Authorization, error) {
	if len(ids) == 0 {
		return []*acme.Authorization{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = authzKey(id)
	}
	raws := make([]any, len(ids))
	if s.oneSlot(keys...) {
		var err error
		if raws, err = s.rdb.MGet(ctx, keys...).Result(); err != nil {
			return nil, fail(ctx, "get authorizations", err)
		}
	} else {
		cmds := make([]*goredis.StringCmd, len(keys))
		_, err := s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i, k := range keys {
				cmds[i] = p.Get(ctx, k)
			}
			return nil
		})
		if err != nil && !errors.Is(err, goredis.Nil) {
			return nil, fail(ctx, "get authorizations", err)
		}
		// Pipelined reports only the first error; a missing key's Nil
		// must not hide a failed read.
		for i, c := range cmds {
			switch err := c.Err(); {
			case err == nil:
				raws[i] = c.Val()
			case !errors.Is(err, goredis.Nil):
				return nil, fail(ctx, "get authorizations", err)
			}
		}
	}
	out := make([]*acme.Authorization, len(ids))
	for i, raw := range raws {
		str, ok := raw.(string)
		if !ok {
			return nil, notFound("authorization", ids[i])
		}
		a, err := decode(authzs, ids[i], []byte(str))
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// UpdateAuthorization keeps the valid-authorization index in step: an
// authorization that becomes valid is recorded as the latest for its
// account and identifier; one that leaves valid is unrecorded, unless a
// later one has replaced it. The index entry shares the account's slot, so
// for scoped IDs this is one script with the write (and, on a single
// server, with the job it queues or finishes). The TTL only ever grows: an
// order may have lengthened it.
func (s *Store) UpdateAuthorization(ctx context.Context, id string, fn func(*acme.Authorization) error, opts ...storage.Option) (*acme.Authorization, error) {
	return update(ctx, s, authzs, id, fn, storage.Apply(opts), func(_ context.Context, raw []byte, cur *acme.Authorization, next []byte) (plan, error) {
		var p plan
		old, err := decode(authzs, id, raw)
		if err != nil {
			return p, err
		}
		ttl := s.ttlAuthz(cur)
		key := authzKey(id)
		p.compare(key, raw)
		p.set(key, next, keepTTL)
		p.extend(key, ttl)
		keys, ops := reindexOps(old, cur)
		for i, k := range keys {
			// On a Cluster an unscoped ID's entry lives elsewhere and is
			// set after the write: an entry not set means no reuse, and
			// one left behind is checked by ValidAuthorization.
			p.reindex(k, ops[i], id, ttl)
		}
		return p, nil
	})
}

// reindexOps lists the index entries to change when old becomes cur and
// what to do to each ("drop" or "set").
func reindexOps(old, cur *acme.Authorization) (keys, ops []string) {
	oldKey := validAuthzKey(old.AccountID, old.Identifier, old.Wildcard)
	curKey := validAuthzKey(cur.AccountID, cur.Identifier, cur.Wildcard)
	wasValid, isValid := old.Status == acme.StatusValid, cur.Status == acme.StatusValid
	if wasValid && (!isValid || oldKey != curKey) {
		keys, ops = append(keys, oldKey), append(ops, "drop")
	}
	// Only a change into valid sets the entry, so it keeps naming the
	// authorization that became valid last.
	if isValid && (!wasValid || oldKey != curKey) {
		keys, ops = append(keys, curKey), append(ops, "set")
	}
	return keys, ops
}

// ValidAuthorization follows the index and, should the authorization have
// left valid since, reports none rather than one that may not be reused.
func (s *Store) ValidAuthorization(ctx context.Context, accountID string, ident acme.Identifier, wildcard bool) (*acme.Authorization, error) {
	id, err := s.rdb.Get(ctx, validAuthzKey(accountID, ident, wildcard)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, notFound("valid authorization for", ident.Value)
	}
	if err != nil {
		return nil, fail(ctx, "get valid authorization", err)
	}
	a, err := get(ctx, s, authzs, id)
	if err != nil {
		return nil, err
	}
	if a.Status != acme.StatusValid {
		return nil, notFound("valid authorization for", ident.Value)
	}
	return a, nil
}
