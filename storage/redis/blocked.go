package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// blockedKeysKey is the hash of blocked keys: key hash → storage.BlockedKey
// as JSON. One small field per key revoked for keyCompromise, kept for
// ever, so it has no TTL; one hash tag, so a Cluster keeps it in one slot.
const blockedKeysKey = prefix + "{blockedkeys}"

// BlockKey is an HSETNX that waits for replicas like any other write a
// client is told about.
func (s *Store) BlockKey(ctx context.Context, k storage.BlockedKey) error {
	var p plan
	if err := p.blockKey(k); err != nil {
		return err
	}
	_, err := s.apply(ctx, "block key", p)
	return err
}

func (s *Store) BlockedKey(ctx context.Context, hash string) (*storage.BlockedKey, error) {
	k, err := decodeBlockedKey(ctx, s.rdb.HGet(ctx, blockedKeysKey, hash), hash)
	if err == nil && k == nil {
		err = notFound("blocked key", hash)
	}
	return k, err
}

// blockKey adds to p the recording of k, unless its key is blocked
// already (the first record stays).
func (p *plan) blockKey(k storage.BlockedKey) error {
	raw, err := json.Marshal(k)
	if err != nil {
		return fmt.Errorf("redis: encode blocked key: %w", err)
	}
	p.add("hsx", blockedKeysKey, k.Hash, raw)
	return nil
}

// lookupBlockedKey queues the HGET of hash, if there is one.
func lookupBlockedKey(ctx context.Context, p goredis.Pipeliner, hash string) *goredis.StringCmd {
	if hash == "" {
		return nil
	}
	return p.HGet(ctx, blockedKeysKey, hash)
}

// decodeBlockedKey reads an HGET of the blocked keys: nil for none queued
// or a key not blocked.
func decodeBlockedKey(ctx context.Context, cmd *goredis.StringCmd, hash string) (*storage.BlockedKey, error) {
	if cmd == nil {
		return nil, nil
	}
	raw, err := cmd.Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fail(ctx, "get blocked key", err)
	}
	var k storage.BlockedKey
	if err := json.Unmarshal(raw, &k); err != nil {
		return nil, fmt.Errorf("redis: decode blocked key %q: %w", hash, err)
	}
	return &k, nil
}
