package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// fail wraps a go-redis error for the caller. Whatever is not a reply from
// Redis is a failure to reach it (refused, reset, timed out, pool
// exhausted, client closed) and is storage.ErrUnavailable, so the API
// answers 503 and the client retries. ctx is consulted because go-redis
// reports its own dial deadline as context.DeadlineExceeded: only when the
// caller's ctx has ended is such an error the caller's doing.
func fail(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return fmt.Errorf("redis: %s: %w", what, err)
	}
	if unavailable(err) {
		return fmt.Errorf("redis: %s: %w: %w", what, storage.ErrUnavailable, err)
	}
	return fmt.Errorf("redis: %s: %w", what, err)
}

func unavailable(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return true
	}
	// Replies a server gives while it cannot serve for now: loading its
	// data, failing over, a cluster reshaping, a replica where a master
	// was expected, a script hogging it, too many clients.
	msg := reply.Error()
	for _, p := range [...]string{
		"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "READONLY",
		"NOREPLICAS", "BUSY ", "ERR max number of clients",
	} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func notFound(name, id string) error {
	return fmt.Errorf("%w: %s %q", storage.ErrNotFound, name, id)
}

func conflict(name, id string) error {
	return fmt.Errorf("%w: %s %q exists", storage.ErrConflict, name, id)
}
