package redis

import (
	"context"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var accounts = resource[acme.Account]{
	name: "account",
	key:  accountKey,
	id:   func(a *acme.Account) string { return a.ID },
}

// CreateAccount writes the account, then claims its key. The two keys live
// in different slots, so this cannot be one script; in this order a
// failure in between leaves at worst an account nobody can find (its ID is
// random and was never handed out), never a key index pointing nowhere that
// would lock the key out for good. A key taken by another account undoes
// the first write and is storage.ErrConflict.
func (s *Store) CreateAccount(ctx context.Context, a *acme.Account) error {
	raw, err := encode(accounts, a)
	if err != nil {
		return err
	}
	// Listed first, so that no account exists unlisted; an ID listed for
	// an account that then failed to be written is skipped by readers.
	if err := s.rdb.ZAdd(ctx, accountListKey, goredis.Z{Member: a.ID}).Err(); err != nil {
		return fail(ctx, "list account", err)
	}
	ok, err := s.setNXDurably(ctx, accountKey(a.ID), raw, 0).Result()
	if err != nil {
		return fail(ctx, "create account", err)
	}
	if !ok {
		return conflict("account", a.ID)
	}
	if a.KeyThumbprint == "" {
		return nil
	}
	ok, err = s.setNXDurably(ctx, accountKeyIndex(a.KeyThumbprint), a.ID, 0).Result()
	if err != nil {
		// The claim may have landed: keep the account, so a retry by the
		// client finds it by its key rather than a dangling index.
		return fail(ctx, "claim account key", err)
	}
	if !ok {
		if _, err := runCAS(ctx, s, delIfScript, "undo account", []string{accountKey(a.ID)}, raw); err != nil {
			return err
		}
		_ = s.rdb.ZRem(ctx, accountListKey, a.ID).Err() // tidying; readers skip it anyway
		return conflict("account key", a.KeyThumbprint)
	}
	return nil
}

func (s *Store) Account(ctx context.Context, id string) (*acme.Account, error) {
	return get(ctx, s, accounts, id)
}

// AccountByKey follows the key index, and trusts it only if the account
// still has that key: an index entry outlives its key for a moment during
// a key change, or for good if a replica died in the middle of one.
func (s *Store) AccountByKey(ctx context.Context, thumbprint string) (*acme.Account, error) {
	id, err := s.rdb.Get(ctx, accountKeyIndex(thumbprint)).Result()
	if errors.Is(err, goredis.Nil) {
		return nil, notFound("account key", thumbprint)
	}
	if err != nil {
		return nil, fail(ctx, "get account key", err)
	}
	a, err := get(ctx, s, accounts, id)
	if err != nil {
		return nil, err
	}
	if a.KeyThumbprint != thumbprint {
		return nil, notFound("account key", thumbprint)
	}
	return a, nil
}

// UpdateAccount moves the key index along with a key change in three
// steps, as the index lives in another slot: claim the new key (a key
// another account holds is storage.ErrConflict), compare-and-set the
// account, then drop the old key's entry. Whichever step fails, the
// account is found by exactly the key it has; entries claimed for a key
// the account did not end up with are released.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(*acme.Account) error) (*acme.Account, error) {
	var claimed []string
	a, err := update(ctx, s, accounts, id, fn, storage.Options{}, func(ctx context.Context, raw []byte, cur *acme.Account, next []byte) (plan, error) {
		var p plan
		old, err := decode(accounts, id, raw)
		if err != nil {
			return p, err
		}
		rekey := old.KeyThumbprint != cur.KeyThumbprint
		if rekey && cur.KeyThumbprint != "" {
			res, err := runCAS(ctx, s, claimScript, "claim account key", []string{accountKeyIndex(cur.KeyThumbprint)}, id)
			if err != nil {
				return p, err
			}
			switch res {
			case 0:
				return p, conflict("account key", cur.KeyThumbprint)
			case 1:
				claimed = append(claimed, cur.KeyThumbprint)
			}
		}
		p.compare(accountKey(id), raw)
		p.set(accountKey(id), next, 0)
		if rekey && old.KeyThumbprint != "" {
			// Taken only once the write stood. AccountByKey ignores an
			// entry for a key its account no longer has, should this
			// part (in another Cluster slot) fail.
			p.reindex(accountKeyIndex(old.KeyThumbprint), "drop", id, 0)
		}
		return p, nil
	})
	s.releaseClaims(ctx, id, claimed, a)
	return a, err
}

// releaseClaims drops the key index entries an UpdateAccount created for
// keys the account did not end up with (a lost race, an fn error on the
// retry, a failed write); final is the account it wrote, if any. An entry
// is kept if the stored account has its key after all: a concurrent update
// to the same key may have won.
func (s *Store) releaseClaims(ctx context.Context, id string, claimed []string, final *acme.Account) {
	if len(claimed) == 0 {
		return
	}
	// Undo even if the caller gave up; the client's timeouts bound it.
	ctx = context.WithoutCancel(ctx)
	stored := final
	if stored == nil {
		var err error
		stored, err = get(ctx, s, accounts, id)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return // cannot tell; a stray entry is ignored by AccountByKey
		}
	}
	for _, thumb := range claimed {
		if stored != nil && stored.KeyThumbprint == thumb {
			continue
		}
		_, _ = runCAS(ctx, s, delIfScript, "release account key", []string{accountKeyIndex(thumb)}, id)
	}
}

// ListAccounts reads the sorted set of account IDs (all scores 0, so
// ordered by ID) a page at a time: no scan of the keyspace. Accounts
// created before the set existed are not in it.
func (s *Store) ListAccounts(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("redis: list accounts: limit %d is not positive", limit)
	}
	start := "-"
	if cursor != "" {
		start = "(" + cursor
	}
	ids, err := s.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: accountListKey, Start: start, Stop: "+", ByLex: true, Count: int64(limit + 1),
	}).Result()
	if err != nil {
		return nil, "", fail(ctx, "list accounts", err)
	}
	if len(ids) > limit {
		return ids[:limit], ids[limit-1], nil
	}
	return ids, "", nil
}
