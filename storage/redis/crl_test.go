package redis_test

import (
	"bytes"
	"testing"

	"github.com/acmed/acmed/storage"
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

// TestCRLMetaApart: the latest CRL's fields other than the DER are a
// small JSON field of their own, so a poll for the number or the fields
// never carries the DER twice.
func TestCRLMetaApart(t *testing.T) {
	url := redistest.Start(t).URL
	c := client(t, url)
	flush(t, c)
	s := open(t, url, redis.Config{})
	der := bytes.Repeat([]byte{0x30}, 1<<20)
	if _, err := s.PutCRL(t.Context(), &storage.CRL{Issuer: "ab", Number: 1, DER: der}); err != nil {
		t.Fatal(err)
	}
	meta, err := c.HGet(t.Context(), "acmed:{crl:ab}:latest", "meta").Result()
	if err != nil || len(meta) > 1024 {
		t.Fatalf("meta field: %d bytes, %v", len(meta), err)
	}
}

func TestIssuersConformance(t *testing.T) {
	issuersConformance(t, redistest.Start(t).URL)
}

func TestClusterIssuersConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	issuersConformance(t, redistest.StartCluster(t).URL)
}

func issuersConformance(t *testing.T, url string) {
	c := client(t, url)
	storagetest.RunIssuers(t, func(t *testing.T) storagetest.IssuersStore {
		flush(t, c)
		t.Cleanup(func() { checkTTLs(t, c) })
		return open(t, url, redis.Config{})
	})
}
