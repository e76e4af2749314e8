package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// caKey holds the identity of the CA the store serves. It has no TTL: it
// outlives every record, since every certificate in the store chains to it.
const caKey = prefix + "ca"

// ClaimCA sets the CA key if absent and reads it back, in one MULTI: SET NX
// with GET in one command needs Redis 7.0 (and reads nothing on success),
// while this works on any server and returns the record whoever wrote it.
func (s *Store) ClaimCA(ctx context.Context, id storage.CAIdentity) (storage.CAIdentity, error) {
	if id.Root == "" || id.Intermediate == "" {
		return storage.CAIdentity{}, errors.New("redis: claim CA: identity has an empty fingerprint")
	}
	raw, err := json.Marshal(id)
	if err != nil {
		return storage.CAIdentity{}, fmt.Errorf("redis: claim CA: %w", err)
	}
	var get *goredis.StringCmd
	_, err = s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.SetNX(ctx, caKey, raw, 0)
		get = p.Get(ctx, caKey)
		return nil
	})
	if err != nil {
		return storage.CAIdentity{}, fail(ctx, "claim CA", err)
	}
	var got storage.CAIdentity
	if err := json.Unmarshal([]byte(get.Val()), &got); err != nil || got.Root == "" || got.Intermediate == "" {
		return storage.CAIdentity{}, fmt.Errorf("redis: key %s holds no CA identity (%q): delete it only if no replica runs on this store", caKey, get.Val())
	}
	return got, nil
}
