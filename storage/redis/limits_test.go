package redis_test

import (
	"testing"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
	"github.com/acmed/acmed/storage/storagetest"
)

// The suite's checks of several scopes in one call cover the pipelined
// path; every key a check leaves has a TTL (checkTTLs).
func TestLimiterConformance(t *testing.T) {
	url := redistest.Start(t).URL
	c := client(t, url)
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}
