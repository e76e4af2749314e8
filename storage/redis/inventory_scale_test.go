package redis_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestInventoryScale loads ACMED_INVENTORY_SCALE certificates (e.g.
// 1000000) through PutCertificate into a server of its own and reports,
// with -v: Redis used_memory per certificate with the inventory and
// without it (its keys deleted afterwards), and the time of the
// operators' queries. It asserts nothing about time.
//
// The estate is a fleet renewing on schedule, with 90-day certificates
// renewed when their window opens (day 60) and kept Retention (30 days)
// after they expire, as fractions of N:
//
//	0.64  current certificates, one per site: issued in the last 60 days
//	0.32  their predecessors (the sites renewed in the last 30 days):
//	      valid, in their window, replaced
//	0.03  expired predecessors of other sites, replaced, within Retention
//	0.01  certificates in their window and not renewed
//
// Predecessors are stored first, so storing a current certificate finds
// and replaces the site's previous one, as issuance does. 10,000
// accounts; three profiles; one or two names per site.
func TestInventoryScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ACMED_INVENTORY_SCALE"))
	if n <= 0 {
		t.Skip("set ACMED_INVENTORY_SCALE to the number of certificates, e.g. 1000000")
	}
	srv := redistest.Start(t)
	if srv.Dir == "" {
		t.Fatal("needs a server of its own, not REDIS_URL: it measures used_memory")
	}
	c := client(t, srv.URL)
	flush(t, c)
	s := open(t, srv.URL, redis.Config{})
	ctx := t.Context()
	chain := testChain(t)
	t.Logf("chain PEM: %d bytes (P-256 leaf and intermediate, as the built-in CA issues)", len(chain))

	now := time.Now().Truncate(time.Second)
	e := newScaleEstate(n, now, chain)
	empty := redistest.UsedMemory(t, c)
	start := time.Now()
	e.load(t, s, e.previous())
	e.load(t, s, e.current())
	t.Logf("loaded %d certificates in %v, %d workers", n, time.Since(start).Round(time.Second), scaleWorkers)
	withIndex := redistest.UsedMemory(t, c) - empty

	timed := func(what string, runs int, fn func() string) {
		t.Helper()
		var took []time.Duration
		detail := ""
		for range runs {
			start := time.Now()
			detail = fn()
			took = append(took, time.Since(start))
		}
		first := took[0]
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		t.Logf("%-46s first %-9v min %-9v median %-9v %s", what, first.Round(time.Microsecond),
			took[0].Round(time.Microsecond), took[len(took)/2].Round(time.Microsecond), detail)
	}
	list := func(f storage.CertFilter, limit int) func() string {
		return func() string {
			f.Now = now
			page, next, err := s.ListCertificates(ctx, f, "", limit)
			if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("%d listed, more: %v", len(page), next != "")
		}
	}
	timed("ListCertificates expiring within 24h, 100", 5, list(storage.CertFilter{ExpiringWithin: 24 * time.Hour}, 100))
	timed("ListCertificates not renewed, 100", 5, list(storage.CertFilter{NotRenewed: true}, 100))
	timed("ListCertificates account, 100", 5, list(storage.CertFilter{Account: scaleAccount(42)}, 100))
	timed("ListCertificates SAN suffix of one site", 5, list(storage.CertFilter{SANSuffix: "site42.example.com"}, 100))
	timed("ListCertificates valid, 100", 5, list(storage.CertFilter{Status: acme.CertValid}, 100))
	timed("CountCertificates (24h, 7d, 30d)", 5, func() string {
		counts, err := s.CountCertificates(ctx, now, []time.Duration{24 * time.Hour, 7 * day, 30 * day})
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%+v", counts)
	})
	// As the alerts package's scan pages through them.
	timed("expiry scan: every not renewed, pages of 500", 3, func() string {
		total, pages := 0, 0
		for cursor := ""; ; pages++ {
			page, next, err := s.ListCertificates(ctx, storage.CertFilter{Now: now, NotRenewed: true}, cursor, 500)
			if err != nil {
				t.Fatal(err)
			}
			total += len(page)
			if next == "" {
				break
			}
			cursor = next
		}
		return fmt.Sprintf("%d certificates, %d pages", total, pages+1)
	})

	// The inventory's keys, then without them.
	var invKeys []string
	for _, k := range keys(t, c) {
		if len(k) > len("acmed:{inv}") && k[:len("acmed:{inv}")] == "acmed:{inv}" {
			invKeys = append(invKeys, k)
		}
	}
	for _, k := range invKeys {
		if err := c.Del(ctx, k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	without := redistest.UsedMemory(t, c) - empty
	t.Logf("used_memory per certificate: %d bytes with the inventory, %d without (records only): the inventory costs %d (%d keys)",
		withIndex/int64(n), without/int64(n), (withIndex-without)/int64(n), len(invKeys))
}

const scaleWorkers = 64

// scaleEstate is the estate of TestInventoryScale.
type scaleEstate struct {
	n                               int
	now                             time.Time
	chain                           []byte
	sites, renewed, expired, behind int // counts
}

func newScaleEstate(n int, now time.Time, chain []byte) *scaleEstate {
	e := &scaleEstate{n: n, now: now, chain: chain}
	e.renewed, e.expired, e.behind = n*32/100, n*3/100, n/100
	e.sites = n - e.renewed - e.expired - e.behind
	return e
}

func scaleAccount(site int) string { return fmt.Sprintf("acct%08d", site%10_000) }

// spread is a fraction in [0, 1) that scatters i evenly.
func spread(i, salt int) float64 {
	h := sha256.Sum256([]byte(strconv.Itoa(i) + "/" + strconv.Itoa(salt)))
	return float64(uint32(h[0])<<16|uint32(h[1])<<8|uint32(h[2])) / (1 << 24)
}

// cert is site's certificate issued at notBefore; gen tells apart a
// site's certificates.
func (e *scaleEstate) cert(site, gen int, notBefore time.Time) *acme.Certificate {
	h := sha256.Sum256([]byte(fmt.Sprintf("%d/%d", site, gen)))
	h[0] &= 0x7f // positive, as the CA's 127-bit serials
	ids := []acme.Identifier{{Type: acme.IdentifierDNS, Value: fmt.Sprintf("www.site%d.example.com", site)}}
	if site%4 == 0 {
		ids = append(ids, acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("site%d.example.com", site)})
	}
	profiles := [...]string{"mtls", "mtls", "server", "shortlived"}
	return &acme.Certificate{
		Serial: hex.EncodeToString(h[:16]), AccountID: scaleAccount(site), OrderID: fmt.Sprintf("order-%d-%d", site, gen),
		ChainPEM: e.chain, Identifiers: ids, Profile: profiles[site%len(profiles)],
		NotBefore: notBefore, NotAfter: notBefore.Add(90 * day),
	}
}

// previous is every certificate stored before the current ones: the
// renewed sites' predecessors, the expired predecessors, and those not
// renewed.
func (e *scaleEstate) previous() func(i int) *acme.Certificate {
	return func(i int) *acme.Certificate {
		switch {
		case i < e.renewed: // site i, current issued x ago, this 60 days before it
			x := time.Duration(spread(i, 1) * float64(30*day))
			return e.cert(i, 0, e.now.Add(-x-60*day))
		case i < e.renewed+e.expired: // site i, expired within Retention
			w := time.Duration(spread(i, 2) * float64(30*day))
			return e.cert(i, 0, e.now.Add(-w-90*day))
		case i < e.renewed+e.expired+e.behind: // a site of its own, in its window
			z := time.Duration(spread(i, 3) * float64(30*day))
			return e.cert(e.sites+i, 0, e.now.Add(-z-60*day).Add(time.Minute))
		}
		return nil
	}
}

// current is each site's current certificate.
func (e *scaleEstate) current() func(i int) *acme.Certificate {
	return func(i int) *acme.Certificate {
		if i >= e.sites {
			return nil
		}
		var age time.Duration
		if i < e.renewed {
			age = time.Duration(spread(i, 1) * float64(30*day))
		} else {
			age = 30*day + time.Duration(spread(i, 4)*float64(30*day))
		}
		return e.cert(i, 1, e.now.Add(-age))
	}
}

// load stores cert(i) for i from 0 until it returns nil, with
// scaleWorkers calls at once, logging progress.
func (e *scaleEstate) load(t *testing.T, s *redis.Store, cert func(int) *acme.Certificate) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed error
	)
	start := time.Now()
	for range scaleWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				c := cert(i)
				if c == nil || ctx.Err() != nil {
					return
				}
				if err := s.PutCertificate(ctx, c); err != nil {
					mu.Lock()
					failed = fmt.Errorf("certificate %d: %w", i, err)
					mu.Unlock()
					cancel()
					return
				}
				if i > 0 && i%200_000 == 0 {
					t.Logf("  %d stored, %v", i, time.Since(start).Round(time.Second))
				}
			}
		}()
	}
	wg.Wait()
	if failed != nil {
		t.Fatal(failed)
	}
}
