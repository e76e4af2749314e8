package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage/redis"
)

// waitTimeout bounds every wait on another goroutine or on Redis.
const waitTimeout = 10 * time.Second

// open opens a store on url and closes it when the test ends.
func open(t testing.TB, url string, cfg redis.Config) *redis.Store {
	t.Helper()
	s, err := redis.Open(t.Context(), url, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, goredis.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// client is a plain go-redis client on url, for looking behind the store.
func client(t testing.TB, url string) goredis.UniversalClient {
	t.Helper()
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// eachMaster runs fn on every master of a Cluster, or on c itself.
func eachMaster(ctx context.Context, c goredis.UniversalClient, fn func(context.Context, goredis.UniversalClient) error) error {
	if cc, ok := c.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, n *goredis.Client) error { return fn(ctx, n) })
	}
	return fn(ctx, c)
}

func flush(t testing.TB, c goredis.UniversalClient) {
	t.Helper()
	err := eachMaster(t.Context(), c, func(ctx context.Context, n goredis.UniversalClient) error {
		return n.FlushDB(ctx).Err()
	})
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
}

// keys lists every key under the acmed: prefix.
func keys(t testing.TB, c goredis.UniversalClient) []string {
	t.Helper()
	var (
		out []string
		mu  sync.Mutex // ForEachMaster runs fn on the masters at once
	)
	// Cleanups call this after t.Context has ended.
	ctx := context.WithoutCancel(t.Context())
	err := eachMaster(ctx, c, func(ctx context.Context, n goredis.UniversalClient) error {
		it := n.Scan(ctx, 0, "acmed:*", 1000).Iterator()
		var found []string
		for it.Next(ctx) {
			found = append(found, it.Val())
		}
		mu.Lock()
		out = append(out, found...)
		mu.Unlock()
		return it.Err()
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

// persistent reports whether key is one the schema keeps for good:
// accounts and their key index entries, and the job stream, which MAXLEN
// and deleting handled jobs bound instead of a TTL.
func persistent(key string) bool {
	return key == "acmed:ca" || key == "acmed:issuers" || key == "acmed:{accounts}" || strings.HasPrefix(key, "acmed:acctkey:") ||
		(strings.HasPrefix(key, "acmed:{a:") && strings.HasSuffix(key, "}:account")) ||
		key == "acmed:{jobs}" || strings.HasPrefix(key, "acmed:{jobs:") ||
		strings.HasPrefix(key, "acmed:{eab}:") || // EAB keys outlive their expiry: their accounts stay bound
		key == "acmed:{blockedkeys}" // a compromised key stays blocked
}

// jobStreams is the number of job streams (the key table in doc.go).
const jobStreams = 16

func jobStreamKey(i int) string { return fmt.Sprintf("acmed:{jobs:%d}", i) }

// jobsLeft counts the entries of every job stream, the legacy one too.
func jobsLeft(t testing.TB, c goredis.UniversalClient) int64 {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	n := c.XLen(ctx, "acmed:{jobs}").Val()
	for i := range jobStreams {
		n += c.XLen(ctx, jobStreamKey(i)).Val()
	}
	return n
}

// checkTTLs fails t for every key that should expire but has no TTL.
func checkTTLs(t testing.TB, c goredis.UniversalClient) {
	t.Helper()
	for _, k := range keys(t, c) {
		ttl, err := c.PTTL(context.WithoutCancel(t.Context()), k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		switch {
		case ttl == -2: // expired since the scan
		case persistent(k) && ttl != -1:
			t.Errorf("key %s has TTL %v; want none", k, ttl)
		case !persistent(k) && ttl < 0:
			t.Errorf("key %s has no TTL", k)
		}
	}
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, waitTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
