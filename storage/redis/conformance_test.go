package redis_test

import (
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
	"github.com/acmed/acmed/storage/storagetest"
)

// The tests of this package flush the server they get. redistest.Start
// starts one per test; REDIS_URL, if set, must name a server they may
// empty, and not one another package's tests use at the same time.
func TestConformance(t *testing.T) {
	conformance(t, redistest.Start(t).URL)
}

// On a Cluster the suite's unscoped IDs spread an order over slots, so it
// also covers the multi-step paths (createSpread and the like).
func TestClusterConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	conformance(t, redistest.StartCluster(t).URL)
}

// conformance runs the shared suite with a flushed server per subtest, and
// after each checks that every key it left, but for accounts, their key
// index and the job stream, has a TTL (DESIGN.md decision 5).
func conformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}

// The estate (issue 15): inventory, campaigns, leases and alerts.
func TestEstateConformance(t *testing.T) {
	estateConformance(t, redistest.Start(t).URL)
}

func TestClusterEstateConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	estateConformance(t, redistest.StartCluster(t).URL)
}

func estateConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunEstate(t, func(t *testing.T) storagetest.EstateStore {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}

func TestBackendConformance(t *testing.T) {
	backendConformance(t, redistest.Start(t).URL)
}

func TestClusterBackendConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	backendConformance(t, redistest.StartCluster(t).URL)
}

// backendConformance runs the suite's clocked and reopening parts.
//
// Redis expires keys by real time, from TTLs computed with the store's
// clock when a key is written, so the suite's clock cannot make Redis
// expire anything. Expire therefore stands in for the passage of time
// only: it deletes each key whose remaining TTL, as Redis reports it, is
// no more than the time the suite's clock moved since the writes. What
// is checked is then exactly what the store set (its TTLs against the
// policy); what is trusted is Redis deleting a key when its TTL runs out.
func backendConformance(t *testing.T, url string) {
	c := client(t, url)
	b := storagetest.Backend{
		Open: func(t *testing.T, now func() time.Time, r storage.Retention) storage.Store {
			flush(t, c)
			t.Cleanup(func() { checkTTLs(t, c) })
			return open(t, url, redis.Config{Now: now, Retention: r.Finished, OrderTTL: r.Grace})
		},
		Expire: func(t *testing.T, _ storage.Store, written, now time.Time) {
			expireKeys(t, c, now.Sub(written))
		},
		Reopen: func(t *testing.T, _ storage.Store) storage.Store {
			return open(t, url, redis.Config{ReclaimAfter: time.Millisecond})
		},
	}
	storagetest.RunBackend(t, b)
	storagetest.RunEstateBackend(t, b)
}

// expireKeys deletes every key whose TTL has at most elapsed left.
func expireKeys(t *testing.T, c goredis.UniversalClient, elapsed time.Duration) {
	t.Helper()
	ctx := t.Context()
	for _, k := range keys(t, c) {
		ttl, err := c.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		if ttl >= 0 && ttl <= elapsed {
			if err := c.Del(ctx, k).Err(); err != nil {
				t.Fatalf("DEL %s: %v", k, err)
			}
		}
	}
}
