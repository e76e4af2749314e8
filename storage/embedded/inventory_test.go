package embedded

import (
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// inventoryBuckets are the buckets whose entries are derived from
// certificate records.
var inventoryBuckets = []string{
	bucketInvNotAfter, bucketInvHours, bucketInvRevoked, bucketInvAccount, bucketInvProfile,
	bucketInvSAN, bucketInvRenew, bucketInvIDSet, bucketCampaignPending, bucketAlertsSent,
}

// entries counts the keys of each inventory bucket that holds any.
func entries(t *testing.T, s *Store) map[string]int {
	t.Helper()
	n := map[string]int{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, name := range inventoryBuckets {
			if k := tx.Bucket([]byte(name)).Stats().KeyN; k > 0 {
				n[name] = k
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// fixedClock moves only when set.
type fixedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fixedClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func testCert(serial, account string, notBefore time.Time, life time.Duration, names ...string) *acme.Certificate {
	c := &acme.Certificate{Serial: serial, AccountID: account, OrderID: "o-" + serial, ChainPEM: []byte("pem"),
		NotBefore: notBefore, NotAfter: notBefore.Add(life), Profile: "mtls"}
	for _, n := range names {
		c.Identifiers = append(c.Identifiers, acme.Identifier{Type: acme.IdentifierDNS, Value: n})
	}
	return c
}

// TestIndexEntriesLeaveWithCertificate: once the sweep has deleted every
// certificate, no entry derived from one is left, whatever happened to
// them: replaced, revoked, in a campaign, alerted about. Before that, an
// expired certificate leaves the not-renewed and pending sets at the
// sweep after its notAfter, and the rest of its entries stay.
func TestIndexEntriesLeaveWithCertificate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fixedClock{now: t0}
	s := openTest(t, filepath.Join(t.TempDir(), "acmed.db"), Config{Now: clock.Now, Retention: 24 * time.Hour, SweepEvery: -1})
	ctx := t.Context()
	const day = 24 * time.Hour
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.PutCertificate(ctx, testCert("01", "a1", t0.Add(-80*day), 90*day, "x.example", "y.example")))
	must(s.PutCertificate(ctx, testCert("02", "a1", t0.Add(-day), 90*day, "y.example", "x.example"))) // replaces 01
	must(s.PutCertificate(ctx, testCert("03", "a2", t0.Add(-70*day), 90*day, "z.example")))
	must(s.PutCertificate(ctx, testCert("04", "a2", t0.Add(-70*day), 90*day, "r.example")))
	_, err := s.UpdateCertificate(ctx, "04", func(c *acme.Certificate) error { return acme.Revoke(c, 1, t0) })
	must(err)
	n, err := s.CreateCampaign(ctx, &acme.Campaign{ID: "camp", CreatedAt: t0, WindowStart: t0, WindowEnd: t0.Add(time.Minute)},
		storage.CertFilter{Now: t0, Account: "a2"})
	must(err)
	if n != 1 {
		t.Fatalf("campaign matched %d, want 1 (03)", n)
	}
	_, err = s.QueueAlert(ctx, acme.Alert{Event: acme.AlertNotRenewed, Serial: "03", DetectedAt: t0}, []string{"https://hook.example"})
	must(err)

	// 03 (a campaign's) expires at +20d: out of the not-renewed and
	// pending sets, still listed as expired.
	clock.Set(t0.Add(20*day + time.Hour))
	_, err = s.Sweep(ctx)
	must(err)
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketInvRenew, bucketCampaignPending} {
			c := tx.Bucket([]byte(b)).Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				if strings.HasSuffix(string(k), "03") {
					t.Errorf("%s keeps the expired certificate 03: %q", b, k)
				}
			}
		}
		return nil
	})
	must(err)
	list, _, err := s.ListCertificates(ctx, storage.CertFilter{Now: clock.Now(), Status: acme.CertExpired}, "", 10)
	must(err)
	if len(list) != 1 || list[0].Serial != "03" {
		t.Fatalf("expired after the sweep: %+v", list)
	}

	clock.Set(t0.Add(200 * day))
	_, err = s.Sweep(ctx)
	must(err)
	if left := entries(t, s); len(left) != 0 {
		t.Fatalf("inventory entries left after every certificate went: %v", left)
	}
	counts, err := s.CountCertificates(ctx, t0, []time.Duration{day})
	must(err)
	if want := (storage.CertCounts{Expiring: map[time.Duration]int64{day: 0}}); !reflect.DeepEqual(counts, want) {
		t.Fatalf("counts of an empty estate: %+v", counts)
	}
}

// TestInventoryBuiltAtOpen: a file written before the inventory existed
// is indexed when Open first meets it, and the latest certificate of each
// identifier set is what a new one replaces.
func TestInventoryBuiltAtOpen(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0 }
	path := filepath.Join(t.TempDir(), "acmed.db")
	s, err := Open(path, Config{Now: now, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const day = 24 * time.Hour
	for _, c := range []*acme.Certificate{
		testCert("0a", "a1", t0.Add(-80*day), 90*day, "m.example"),
		testCert("0b", "a1", t0.Add(-70*day), 90*day, "n.example"),
		testCert("0c", "a1", t0.Add(-10*day), 90*day, "n.example"),
		testCert("0d", "a2", t0.Add(-95*day), 90*day, "m.example"),
	} {
		// As an earlier acmed stored it: the record alone.
		err := s.db.Update(func(tx *bolt.Tx) error {
			raw, err := encode(certs, c.Serial, c)
			if err != nil {
				return err
			}
			return tx.Bucket([]byte(bucketCerts)).Put([]byte(c.Serial), raw)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range inventoryBuckets {
			if err := tx.DeleteBucket([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Config{Now: now, SweepEvery: -1})
	list, _, err := s.ListCertificates(ctx, storage.CertFilter{Now: t0}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var serials []string
	for _, c := range list {
		serials = append(serials, c.Serial)
	}
	if want := []string{"0d", "0a", "0b", "0c"}; !reflect.DeepEqual(serials, want) {
		t.Fatalf("listed %q, want %q", serials, want)
	}
	nr, _, err := s.ListCertificates(ctx, storage.CertFilter{Now: t0, NotRenewed: true}, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(nr) != 2 {
		t.Fatalf("not renewed: %+v, want 0a and 0b", nr)
	}
	if err := s.PutCertificate(ctx, testCert("0e", "a1", t0, 90*day, "n.example")); err != nil {
		t.Fatal(err)
	}
	for serial, want := range map[string][2]string{"0b": {"", ""}, "0c": {"", "0e"}, "0e": {"0c", ""}} {
		c, err := s.Certificate(ctx, serial)
		if err != nil {
			t.Fatal(err)
		}
		if got := [2]string{c.Replaces, c.ReplacedBy}; got != want {
			t.Errorf("%s replaces, replaced by = %q, want %q", serial, got, want)
		}
	}
}

// TestReplacedAfterExpiry: a certificate replaced after it expired, before
// a sweep took it out of the not-renewed set, leaves nothing behind.
func TestReplacedAfterExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fixedClock{now: t0}
	s := openTest(t, filepath.Join(t.TempDir(), "acmed.db"), Config{Now: clock.Now, Retention: time.Hour, SweepEvery: -1})
	ctx := t.Context()
	const day = 24 * time.Hour
	if err := s.PutCertificate(ctx, testCert("01", "a1", t0.Add(-80*day), 90*day, "x.example")); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(11 * day)) // 01 lapsed; no sweep yet
	if err := s.PutCertificate(ctx, testCert("02", "a1", t0.Add(11*day), 90*day, "x.example")); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(200 * day))
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if left := entries(t, s); len(left) != 0 {
		t.Fatalf("inventory entries left after every certificate went: %v", left)
	}
}
