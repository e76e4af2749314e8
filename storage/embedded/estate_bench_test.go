package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// BenchmarkEstate loads an estate of ACMED_BENCH_CERTS certificates
// (default 10,000) through insertCert, the code issuance runs, in
// transactions of 10,000, and times the operators' queries on it:
//
//	go test -run '^$' -bench Estate -benchtime 50x ./storage/embedded/
//	ACMED_BENCH_CERTS=1000000 go test -run '^$' -bench Estate -benchtime 50x -timeout 60m ./storage/embedded/
//
// The estate is a fleet of hosts renewing at the start of their window:
// each host's current 90-day certificate was issued in the last 60 days
// and replaced the previous one, kept until 30 days (--retention) past
// its notAfter; 1% of the hosts failed to renew and are in their window.
// So about 1/60 of the hosts have a certificate expiring within 24h, and
// 1% are not renewed: the queries return pages of 100 from those.
func BenchmarkEstate(b *testing.B) {
	n := 10_000
	if v := os.Getenv("ACMED_BENCH_CERTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 2 {
			b.Fatalf("ACMED_BENCH_CERTS=%q: want a number of certificates, at least 2", v)
		}
	}
	now := time.Now().Truncate(time.Second)
	path := filepath.Join(b.TempDir(), "acmed.db")
	s, err := Open(path, Config{Now: func() time.Time { return now }, SweepEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	start := time.Now()
	loaded := loadFleet(b, s, n, now)
	b.Logf("loaded %d certificates in %v", loaded, time.Since(start).Round(time.Millisecond))
	reportSize(b, s, path, loaded)

	ctx := b.Context()
	page := func(f storage.CertFilter) func(b *testing.B) {
		return func(b *testing.B) {
			var got int
			for b.Loop() {
				list, _, err := s.ListCertificates(ctx, f, "", 100)
				if err != nil {
					b.Fatal(err)
				}
				got = len(list)
			}
			b.ReportMetric(float64(got), "certs/page")
		}
	}
	b.Run("ListExpiringWithin24h", page(storage.CertFilter{Now: now, ExpiringWithin: 24 * time.Hour}))
	b.Run("ListNotRenewed", page(storage.CertFilter{Now: now, NotRenewed: true}))
	b.Run("ListAccount", page(storage.CertFilter{Now: now, Account: "acct-7", Status: acme.CertValid}))
	b.Run("ListSANSuffix", page(storage.CertFilter{Now: now, SANSuffix: "svc7.example.com"}))
	b.Run("CountCertificates", func(b *testing.B) {
		var c storage.CertCounts
		for b.Loop() {
			if c, err = s.CountCertificates(ctx, now, []time.Duration{24 * time.Hour, 7 * 24 * time.Hour}); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("counts: valid %d, expired %d, expiring 24h %d, not renewed %d", c.Valid, c.Expired, c.Expiring[24*time.Hour], c.NotRenewed)
	})
}

// loadFleet stores about n certificates as BenchmarkEstate describes
// and returns how many.
func loadFleet(b *testing.B, s *Store, n int, now time.Time) int {
	const day = 24 * time.Hour
	const life = 90 * day
	rng := mrand.New(mrand.NewPCG(1, 2))
	chain := fakeChain()
	serial := func() string {
		var r [16]byte
		_, _ = rand.Read(r[:])
		r[0] &= 0x7f
		r[0] |= 0x01 // no leading zero octet: canonical as it is
		return hex.EncodeToString(r[:])
	}
	cert := func(host int, notBefore time.Time) *acme.Certificate {
		names := []acme.Identifier{{Type: acme.IdentifierDNS, Value: fmt.Sprintf("h%d.svc%d.example.com", host, host%1000)}}
		if host%3 == 0 {
			names = append(names, acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("alt%d.svc%d.example.com", host, host%1000)})
		}
		return &acme.Certificate{
			Serial: serial(), AccountID: fmt.Sprintf("acct-%d", host%(n/20+1)), OrderID: "o",
			ChainPEM: chain, Identifiers: names, NotBefore: notBefore, NotAfter: notBefore.Add(life),
			Profile: []string{"mtls", "server"}[host%2],
		}
	}
	var batch []*acme.Certificate
	loaded := 0
	flush := func() {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, c := range batch {
				if err := insertCert(tx, c, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		loaded += len(batch)
		batch = batch[:0]
	}
	add := func(c *acme.Certificate) {
		batch = append(batch, c)
		if len(batch) == 10_000 {
			flush()
		}
	}
	for host := 0; loaded+len(batch) < n; host++ {
		if host%100 == 0 {
			// Failed to renew: in its window, alone.
			add(cert(host, now.Add(-60*day-time.Duration(rng.Int64N(int64(30*day))))))
			continue
		}
		current := now.Add(-time.Duration(rng.Int64N(int64(60 * day))))
		// The previous one, replaced by the current one (the store finds
		// it: same account, same names); kept while within retention.
		if prev := current.Add(-60 * day); prev.Add(life + 30*day).After(now) {
			add(cert(host, prev))
		}
		add(cert(host, current))
	}
	flush()
	return loaded
}

// fakeChain is a PEM chain of a realistic size: an ECDSA leaf and an
// intermediate, about 1.6 kB.
func fakeChain() []byte {
	var sb strings.Builder
	for _, size := range []int{620, 560} {
		raw := make([]byte, size)
		_, _ = rand.Read(raw)
		sb.WriteString("-----BEGIN CERTIFICATE-----\n")
		enc := []byte(fmt.Sprintf("%x", raw))[:size*4/3]
		for len(enc) > 64 {
			sb.Write(enc[:64])
			sb.WriteByte('\n')
			enc = enc[64:]
		}
		sb.Write(enc)
		sb.WriteString("\n-----END CERTIFICATE-----\n")
	}
	return []byte(sb.String())
}

// reportSize reports the file's size per certificate, and the share of
// it the inventory's buckets take (their pages in use).
func reportSize(b *testing.B, s *Store, path string, n int) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	var lines []string
	var index, records int
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
			st := bk.Stats()
			used := st.BranchInuse + st.LeafInuse
			if st.KeyN == 0 {
				return nil
			}
			if strings.HasPrefix(string(name), "inv-") || string(name) == bucketCampaignPending {
				index += used
			} else {
				records += used
			}
			lines = append(lines, fmt.Sprintf("%s %d keys %.0f B/cert", name, st.KeyN, float64(used)/float64(n)))
			return nil
		})
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("file %d bytes, %.0f B/cert; in use: records %.0f B/cert, indexes %.0f B/cert\n%s",
		fi.Size(), float64(fi.Size())/float64(n), float64(records)/float64(n), float64(index)/float64(n), strings.Join(lines, "\n"))
}
