package crl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// BenchmarkBuild times building the CRL of an estate of
// ACMED_CRL_BENCH_CERTS revoked certificates (default 10,000), loaded
// through the store's PutCertificate, on each backend: listing them from
// the inventory, signing, and storing the CRL. It reports the CRL's size.
//
//	ACMED_CRL_BENCH_CERTS=100000 go test -run '^$' -bench Build -benchtime 5x -timeout 30m ./acme/crl/
func BenchmarkBuild(b *testing.B) {
	n := 10_000
	if v := os.Getenv("ACMED_CRL_BENCH_CERTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("ACMED_CRL_BENCH_CERTS=%q: want a number of certificates", v)
		}
	}
	dir := filepath.Join(b.TempDir(), "ca")
	if err := ca.Init(dir, ca.Config{}); err != nil {
		b.Fatal(err)
	}
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		b.Fatal(err)
	}
	chain := benchChain(b, l)
	b.Run("embedded", func(b *testing.B) {
		s, err := embedded.Open(filepath.Join(b.TempDir(), "acmed.db"), embedded.Config{SweepEvery: -1})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchBuild(b, s, l, n, chain)
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		s, err := redis.Open(b.Context(), srv.URL, redis.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		benchBuild(b, s, l, n, chain)
	})
}

func benchChain(b *testing.B, l *ca.Local) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	issued, err := l.Sign(b.Context(), ca.Request{PublicKey: key.Public(), DNSNames: []string{"host.bench.example"},
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), CRLDistributionPoints: []string{base + "/crl/x.crl"}})
	if err != nil {
		b.Fatal(err)
	}
	return issued.ChainPEM
}

// benchStore is a store the benchmark can load.
type benchStore interface {
	crl.Store
	storage.Certificates
}

// benchBuild loads n revoked certificates into s, 32 writers at once, and
// times Build.
func benchBuild(b *testing.B, s benchStore, l *ca.Local, n int, chain []byte) {
	ctx := b.Context()
	now := time.Now().Truncate(time.Second)
	reasons := []int{0, 1, 3, 4, 5, 9}
	start := time.Now()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range jobs {
				serial := make([]byte, 16)
				_, _ = io.ReadFull(rand.Reader, serial)
				serial[0] &= 0x7f
				c := &acme.Certificate{
					Serial: hex.EncodeToString(serial), AccountID: fmt.Sprintf("acct%05d", i%1000),
					OrderID: fmt.Sprintf("order%07d", i), ChainPEM: chain,
					Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: fmt.Sprintf("host%07d.bench.example", i)}},
					NotBefore:   now.Add(-time.Duration(i%60) * 24 * time.Hour),
					NotAfter:    now.Add(time.Duration(30+i%60) * 24 * time.Hour),
					Revoked:     true, RevokedAt: now.Add(-time.Duration(i%3600) * time.Second), Reason: reasons[i%len(reasons)],
				}
				if err := s.PutCertificate(ctx, c); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	b.Logf("loaded %d revoked certificates in %v", n, time.Since(start).Round(time.Millisecond))
	p, err := crl.New(crl.Config{Store: s, Issuer: l, BaseURL: base, Holder: "bench",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	var c *storage.CRL
	for b.Loop() {
		if c, err = p.Build(ctx, "bench"); err != nil {
			b.Fatal(err)
		}
	}
	if c.Entries != n {
		b.Fatalf("the CRL lists %d certificates, want %d", c.Entries, n)
	}
	b.ReportMetric(float64(len(c.DER)), "CRL-bytes")
	b.ReportMetric(float64(c.Entries), "entries")
}
