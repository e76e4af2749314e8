package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// maxTries bounds the compare-and-set loop. Each lost race means another
// writer won, so the store as a whole made progress; twenty in a row means
// a hot key, and the caller is better told than kept spinning.
const maxTries = 20

// resource names one kind of JSON record.
type resource[T any] struct {
	name string // for errors
	key  func(id string) string
	id   func(*T) string
}

// casWrite stores next (the encoding of cur) if the key still holds raw,
// the bytes cur was decoded from, and returns casWritten, casChanged or
// casGone.
type casWrite[T any] func(ctx context.Context, raw []byte, cur *T, next []byte) (int64, error)

func get[T any](ctx context.Context, s *Store, r resource[T], id string) (*T, error) {
	raw, err := s.rdb.Get(ctx, r.key(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, notFound(r.name, id)
	}
	if err != nil {
		return nil, fail(ctx, "get "+r.name, err)
	}
	return decode(r, id, raw)
}

func decode[T any](r resource[T], id string, raw []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("redis: decode %s %q: %w", r.name, id, err)
	}
	return v, nil
}

func encode[T any](r resource[T], v *T) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("redis: encode %s %q: %w", r.name, r.id(v), err)
	}
	return raw, nil
}

// update is the compare-and-set loop behind every UpdateX (DESIGN.md
// decision 2): read, let fn change a fresh copy, and have a script write it
// only if the key still holds the bytes read; else read again. An fn error
// comes back unchanged with nothing written. An fn that changes nothing
// costs no write.
func update[T any](ctx context.Context, s *Store, r resource[T], id string, fn func(*T) error, write casWrite[T]) (*T, error) {
	key := r.key(id)
	for range maxTries {
		raw, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, goredis.Nil) {
			return nil, notFound(r.name, id)
		}
		if err != nil {
			return nil, fail(ctx, "get "+r.name, err)
		}
		cur, err := decode(r, id, raw)
		if err != nil {
			return nil, err
		}
		if err := fn(cur); err != nil {
			return nil, err
		}
		if r.id(cur) != id {
			return nil, fmt.Errorf("redis: update %s %q: fn changed its ID to %q", r.name, id, r.id(cur))
		}
		next, err := encode(r, cur)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(next, raw) {
			return cur, nil
		}
		switch res, err := write(ctx, raw, cur, next); {
		case err != nil:
			return nil, err
		case res == casWritten:
			return cur, nil
		case res == casGone:
			return nil, notFound(r.name, id)
		}
	}
	return nil, fmt.Errorf("redis: update %s %q: %w: lost %d races in a row", r.name, id, storage.ErrConflict, maxTries)
}

// runCAS runs a compare-and-set script and reads its result.
func runCAS(ctx context.Context, s *Store, script *goredis.Script, what string, keys []string, args ...any) (int64, error) {
	res, err := script.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return 0, fail(ctx, what, err)
	}
	return res, nil
}
