package embedded_test

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/storagetest"
)

func TestLimiterConformance(t *testing.T) {
	storagetest.RunLimiter(t, func(t *testing.T) storage.Limiter {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}

func TestSpendingConformance(t *testing.T) {
	storagetest.RunSpending(t, func(t *testing.T) storagetest.LimitedStore {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}

// BenchmarkLimit is the in-process cost of new-order's checks: the
// account's order and pending-authorization limits, one identifier's
// failed validations and the identifier set's certificates.
func BenchmarkLimit(b *testing.B) {
	s, err := embedded.Open(filepath.Join(b.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	big := storage.Limit{Count: 1 << 40, Period: time.Hour}
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		acct := strconv.Itoa(i % 1000)
		checks := []storage.LimitCheck{
			{Name: "orders", Key: "orders", Scope: acct, Limit: big, Cost: 1},
			{Name: "pending", Key: "pending", Scope: acct, Limit: big, Cost: 1},
			{Name: "failed", Key: "failed:dns:a.example", Scope: acct, Limit: big},
			{Name: "certs", Key: "certs:" + acct, Limit: big},
		}
		if d, err := s.Limit(b.Context(), now, checks); err != nil || !d.Allowed {
			b.Fatal(d, err)
		}
	}
}

func TestCreateLimitsConformance(t *testing.T) {
	storagetest.RunCreateLimits(t, func(t *testing.T) storagetest.LimitedStore {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}
