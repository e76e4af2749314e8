package redis_test

import (
	"testing"

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
