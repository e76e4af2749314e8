package authority_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// limitStores opens each backend for a test of the limits, as
// authority.Store and storage.Limiter at once.
func limitStores(t *testing.T) map[string]func(t *testing.T) interface {
	authority.Store
	storage.Limiter
} {
	type store = interface {
		authority.Store
		storage.Limiter
	}
	return map[string]func(t *testing.T) store{
		"embedded": func(t *testing.T) store {
			s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
		"redis": func(t *testing.T) store {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := redis.Open(ctx, redistest.Start(t).URL, redis.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

// TestPendingOrdersCapped: with the default limits, an account that opens
// pending orders and never answers them is refused long before 100,000:
// at 10,000 pending authorizations (100 orders of 100 names), with
// rateLimited naming pending-authorizations-per-account, on both stores.
func TestPendingOrdersCapped(t *testing.T) {
	for name, open := range limitStores(t) {
		t.Run(name, func(t *testing.T) {
			store := open(t)
			now := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
			a, err := authority.New(authority.Config{
				Store: store, Limiter: store, Limits: authority.DefaultLimits(),
				Validator: &fakeValidator{}, Signer: newFakeSigner(t),
				Now:    func() time.Time { return now },
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			acct, _, err := a.NewAccount(t.Context(), newKey(t), authority.NewAccountRequest{ClientIP: "192.0.2.1"})
			if err != nil {
				t.Fatal(err)
			}
			pending := 0
			for i := range 1000 { // 100,000 names
				names := make([]string, 100)
				for j := range names {
					names[j] = fmt.Sprintf("n%d-%d.flood.example", i, j)
				}
				_, err := a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs(names...)})
				if err != nil {
					var p *acme.Problem
					if !errors.As(err, &p) || !errors.Is(err, acme.ErrRateLimited) || p.Status != 429 ||
						!strings.Contains(p.Detail, authority.LimitPendingAuthorizationsPerAccount) {
						t.Fatalf("order %d: %v, want rateLimited naming %s", i+1, err, authority.LimitPendingAuthorizationsPerAccount)
					}
					// One authorization more every 24h/10,000: 100 of them
					// in 100 × 8.64s.
					if want := 100 * 8640 * time.Millisecond; p.RetryAfter != want {
						t.Fatalf("RetryAfter %v, want %v", p.RetryAfter, want)
					}
					t.Logf("refused after %d pending authorizations (%d orders of 100 names)", pending, i)
					if pending != 10000 {
						t.Fatalf("refused at %d pending authorizations, want 10000", pending)
					}
					return
				}
				pending += len(names)
			}
			t.Fatalf("%d pending authorizations accepted", pending)
		})
	}
}

// TestLimitsOffWithoutLimiter: no Limiter, no limits, whatever Limits say.
func TestLimitsOffWithoutLimiter(t *testing.T) {
	e := newEnv(t, func(c *authority.Config) {
		c.Limits = authority.Limits{NewOrdersPerAccount: storage.Limit{Count: 1, Period: time.Hour}}
	})
	acct := e.account(t)
	for range 3 {
		e.order(t, acct, "a.example")
	}
}

func TestLimitsSet(t *testing.T) {
	var ls authority.Limits
	for _, name := range authority.LimitNames() {
		l := storage.Limit{Count: 7, Period: time.Minute}
		if name == authority.LimitPendingAuthorizationsPerAccount {
			l.Period = 0
		}
		if err := ls.Set(name, l); err != nil {
			t.Fatalf("Set(%s): %v", name, err)
		}
	}
	want := storage.Limit{Count: 7, Period: time.Minute}
	if ls.NewAccountsPerIP != want || ls.NewOrdersPerAccount != want || ls.PendingAuthorizationsPerAccount != 7 ||
		ls.FailedValidationsPerAccountIdentifier != want || ls.CertificatesPerIdentifierSet != want {
		t.Fatalf("Limits after Set: %+v", ls)
	}
	if err := ls.Set("orders-per-day", want); err == nil {
		t.Fatal("unknown limit accepted")
	}
	if err := ls.Set(authority.LimitPendingAuthorizationsPerAccount, want); err == nil {
		t.Fatal("a period on the pending cap accepted")
	}
}
