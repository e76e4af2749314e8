package embedded_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
)

type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestSweep: a valid order and a certificate go Retention after they
// expire, an authorization with the last order listing it, index entries
// with what they point at; accounts stay. The conformance suite checks
// every kind and status (storagetest.RunRetention).
func TestSweep(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &testClock{now: t0}
	const retention = 24 * time.Hour
	s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{Now: clock.Now, Retention: retention, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := t.Context()
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "sweep.example"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAccount(ctx, &acme.Account{ID: "a1", KeyThumbprint: "k1", Status: acme.StatusValid}))
	az := &acme.Authorization{ID: "a1.z1", AccountID: "a1", Identifier: id, Status: acme.StatusValid, Expires: t0.Add(time.Hour)}
	o := &acme.Order{ID: "a1.o1", AccountID: "a1", Status: acme.StatusValid, Identifiers: []acme.Identifier{id},
		AuthzIDs: []string{az.ID}, Expires: t0.Add(time.Hour)}
	must(s.CreateOrder(ctx, o, []*acme.Authorization{az}))
	must(s.PutCertificate(ctx, &acme.Certificate{Serial: "abc", AccountID: "a1", NotAfter: t0.Add(7 * 24 * time.Hour)}))

	tests := []struct {
		at                        time.Duration
		order, authz, cert, index bool // still there
	}{
		// The authorization's own time (Expires + 1h grace) passes
		// first, but the valid order listing it keeps it.
		{2*time.Hour + time.Minute, true, true, true, true},
		{time.Hour + retention - time.Minute, true, true, true, true},
		{time.Hour + retention + time.Minute, false, false, true, false},
		{7*24*time.Hour + retention - time.Minute, false, false, true, false},
		{7*24*time.Hour + retention + time.Minute, false, false, false, false},
	}
	for _, tt := range tests {
		clock.Set(t0.Add(tt.at))
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := s.Order(ctx, o.ID)
		_, aerr := s.Authorization(ctx, az.ID)
		_, cerr := s.Certificate(ctx, "abc")
		_, ierr := s.ValidAuthorization(ctx, "a1", id, false)
		ids, _, lerr := s.AccountOrders(ctx, "a1", "", 10)
		must(lerr)
		got := []bool{err == nil, aerr == nil, cerr == nil, ierr == nil}
		want := []bool{tt.order, tt.authz, tt.cert, tt.index}
		for i, name := range []string{"order", "authorization", "certificate", "valid-authz index"} {
			if got[i] != want[i] {
				t.Errorf("at +%s: %s present = %v, want %v", tt.at, name, got[i], want[i])
			}
		}
		if (len(ids) == 1) != tt.order {
			t.Errorf("at +%s: account lists %v", tt.at, ids)
		}
	}
	if _, err := s.Account(ctx, "a1"); err != nil {
		t.Fatalf("account swept: %v", err)
	}
	if _, err := s.Order(ctx, o.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("swept order: %v", err)
	}
}
