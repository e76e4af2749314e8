package storagetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// CRLStore is a store that keeps what CRL publication shares.
type CRLStore interface {
	storage.Store
	storage.CRLs
}

// RunCRL runs the CRL part of the suite; open is as for Run.
func RunCRL(t *testing.T, open func(t *testing.T) CRLStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) CRLStore)
	}{
		{"Numbers", testCRLNumbers},
		{"NumbersConcurrent", testCRLNumbersConcurrent},
		{"Latest", testCRLLatest},
		{"RevocationRevision", testRevocationRevision},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// testCRLNumbers: numbers grow by one per call, per issuer, and jump to
// the floor when it is ahead.
func testCRLNumbers(t *testing.T, open func(*testing.T) CRLStore) {
	s, ctx := open(t), t.Context()
	next := func(issuer string, atLeast, want uint64) {
		t.Helper()
		n, err := s.NextCRLNumber(ctx, issuer, atLeast)
		mustNot(t, "NextCRLNumber", err)
		if n != want {
			t.Fatalf("NextCRLNumber(%s, %d) = %d, want %d", issuer, atLeast, n, want)
		}
	}
	next("issuer-a", 0, 1)
	next("issuer-a", 0, 2)
	next("issuer-a", 1_700_000_000, 1_700_000_000)
	next("issuer-a", 0, 1_700_000_001)
	next("issuer-a", 5, 1_700_000_002) // a floor behind never lowers it
	next("issuer-b", 0, 1)
	next("issuer-a", 1_700_000_002, 1_700_000_003)
}

// testCRLNumbersConcurrent: callers at once (replicas) never get the
// same number.
func testCRLNumbersConcurrent(t *testing.T, open func(*testing.T) CRLStore) {
	s, ctx := open(t), t.Context()
	const workers, each = 8, 10
	var (
		mu  sync.Mutex
		got []uint64
		wg  sync.WaitGroup
	)
	for range workers {
		wg.Go(func() {
			for range each {
				n, err := s.NextCRLNumber(ctx, "issuer", 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(got)
	if len(slices.Compact(slices.Clone(got))) != workers*each || got[len(got)-1] != workers*each {
		t.Fatalf("numbers handed out: %v; want 1 to %d once each", got, workers*each)
	}
}

func testCRL(issuer string, number uint64, der []byte) *storage.CRL {
	this := createdAt().Add(time.Duration(number) * time.Minute)
	return &storage.CRL{
		Issuer: issuer, Number: number, Revision: number * 10,
		DistributionPoint: "https://acme.example/crl/" + issuer + ".crl",
		ThisUpdate:        this, NextUpdate: this.Add(24 * time.Hour), Entries: int(number), DER: der,
	}
}

// testCRLLatest: the latest CRL per issuer is the one with the highest
// number put; an older or equal one never replaces it.
func testCRLLatest(t *testing.T, open func(*testing.T) CRLStore) {
	s, ctx := open(t), t.Context()
	_, err := s.LatestCRL(ctx, "issuer-a")
	mustBe(t, "LatestCRL before any", err, storage.ErrNotFound)
	n, err := s.LatestCRLNumber(ctx, "issuer-a")
	mustNot(t, "LatestCRLNumber", err)
	mustEqual(t, "LatestCRLNumber before any", n, uint64(0))

	// A CRL of 100,000 entries is some 4 MB of DER.
	big := bytes.Repeat([]byte{0x30, 0x82, 0xff}, 1<<20)
	put := func(c *storage.CRL, want bool) {
		t.Helper()
		ok, err := s.PutCRL(ctx, c)
		mustNot(t, "PutCRL", err)
		if ok != want {
			t.Fatalf("PutCRL(%s #%d) = %v, want %v", c.Issuer, c.Number, ok, want)
		}
	}
	latest := func(issuer string, want *storage.CRL) {
		t.Helper()
		got, err := s.LatestCRL(ctx, issuer)
		mustNot(t, "LatestCRL", err)
		mustEqual(t, "LatestCRL "+issuer, got, want)
		n, err := s.LatestCRLNumber(ctx, issuer)
		mustNot(t, "LatestCRLNumber", err)
		mustEqual(t, "LatestCRLNumber "+issuer, n, want.Number)
	}
	five := testCRL("issuer-a", 5, []byte("crl five"))
	put(five, true)
	latest("issuer-a", five)
	put(testCRL("issuer-a", 5, []byte("another five")), false)
	put(testCRL("issuer-a", 3, []byte("three")), false)
	latest("issuer-a", five)
	seven := testCRL("issuer-a", 7, big)
	put(seven, true)
	latest("issuer-a", seven)
	// Numbers of more digits are larger, whatever their first digit.
	ten := testCRL("issuer-a", 10, []byte("ten"))
	put(ten, true)
	put(testCRL("issuer-a", 9, []byte("nine")), false)
	latest("issuer-a", ten)

	other := testCRL("issuer-b", 1, []byte("b one"))
	put(other, true)
	latest("issuer-b", other)
	latest("issuer-a", ten)
}

// testRevocationRevision: every revocation write changes the revision,
// whichever certificate it revokes.
func testRevocationRevision(t *testing.T, open func(*testing.T) CRLStore) {
	s, ctx := open(t), t.Context()
	rev := func() uint64 {
		t.Helper()
		n, err := s.RevocationRevision(ctx)
		mustNot(t, "RevocationRevision", err)
		return n
	}
	seen := []uint64{rev()}
	for i := range 3 {
		serial := fmt.Sprintf("0a%02d", i)
		c := newCertificate(serial, "acct-crl", "order-crl")
		c.NotBefore = createdAt()
		mustNot(t, "PutCertificate", s.PutCertificate(ctx, c))
		_, err := s.UpdateCertificate(ctx, serial, func(c *acme.Certificate) error {
			return acme.Revoke(c, 1, createdAt().Add(time.Hour))
		})
		mustNot(t, "revoke", err)
		n := rev()
		if slices.Contains(seen, n) {
			t.Fatalf("revision after revocation %d is %d, seen before: %v", i+1, n, seen)
		}
		seen = append(seen, n)
	}
	// A reason change (keyCompromise after superseded) changes what the
	// CRL says: it is a revision too.
	c := newCertificate("0b00", "acct-crl", "order-crl")
	c.NotBefore = createdAt()
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, c))
	for _, reason := range []int{4, 1} {
		_, err := s.UpdateCertificate(ctx, "0b00", func(c *acme.Certificate) error {
			return acme.Revoke(c, reason, createdAt().Add(time.Hour))
		})
		mustNot(t, "revoke", err)
		if n := rev(); slices.Contains(seen, n) {
			t.Fatalf("revision after revoking with reason %d is %d, seen before: %v", reason, n, seen)
		} else {
			seen = append(seen, n)
		}
	}
}
