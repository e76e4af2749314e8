package redis_test

import (
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
	"github.com/acmed/acmed/storage/storagetest"
)

// The suite's checks of several scopes in one call cover the pipelined
// path; every key a check leaves has a TTL (checkTTLs).
func TestLimiterConformance(t *testing.T) {
	limiterConformance(t, redistest.Start(t).URL)
}

// On a Cluster the suite's checks of several scopes land in several slots.
func TestClusterLimiterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	limiterConformance(t, redistest.StartCluster(t).URL)
}

func limiterConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}

// Spending rides in the update's script (one slot: the account's).
func TestSpendingConformance(t *testing.T) {
	spendingConformance(t, redistest.Start(t).URL)
}

// On a Cluster a count in another slot than the write takes a step of
// its own, once the write stood.
func TestClusterSpendingConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	spendingConformance(t, redistest.StartCluster(t).URL)
}

func spendingConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunSpending(t, func(t *testing.T) storagetest.LimitedStore {
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}

// A Redis that lost its scripts (a restart, a failover) still decides a
// pipelined call of several scopes: the NOSCRIPT ones go again.
func TestLimitWithoutLoadedScript(t *testing.T) {
	url := redistest.Start(t).URL
	c := client(t, url)
	s := open(t, url, redis.Config{})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	one := storage.Limit{Count: 1, Period: time.Hour}
	checks := []storage.LimitCheck{
		{Name: "a", Key: "k", Scope: "acct1", Limit: one, Cost: 1},
		{Name: "b", Key: "k", Limit: one, Cost: 1},
	}
	for i, want := range []bool{true, false} {
		if err := c.ScriptFlush(t.Context()).Err(); err != nil {
			t.Fatal(err)
		}
		d, err := s.Limit(t.Context(), now, checks)
		if err != nil || d.Allowed != want {
			t.Fatalf("call %d: %+v, %v; want allowed %v", i+1, d, err, want)
		}
	}
}

// CreateOrder's limits ride in its script (one slot: the account's);
// on a Cluster the unscoped check is decided in a step of its own.
func TestCreateLimitsConformance(t *testing.T) {
	createLimitsConformance(t, redistest.Start(t).URL)
}

func TestClusterCreateLimitsConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	createLimitsConformance(t, redistest.StartCluster(t).URL)
}

func createLimitsConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunCreateLimits(t, func(t *testing.T) storagetest.LimitedStore {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}
