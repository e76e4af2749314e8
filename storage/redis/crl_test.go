package redis_test

import (
	"testing"

	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
	"github.com/acmed/acmed/storage/storagetest"
)

func TestCRLConformance(t *testing.T) {
	crlConformance(t, redistest.Start(t).URL)
}

func TestClusterCRLConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	crlConformance(t, redistest.StartCluster(t).URL)
}

func crlConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunCRL(t, func(t *testing.T) storagetest.CRLStore {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}
