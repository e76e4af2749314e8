package authority_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// TestPendingSingleNameOrdersCapped is the flood of the issue as it came:
// orders of one new name each, never answered. With the defaults the
// 10,001st is refused (new-orders-per-account and the pending cap run out
// together; the first is named).
func TestPendingSingleNameOrdersCapped(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 orders")
	}
	store := limitStores(t)["redis"](t)
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
	acct, _, err := a.NewAccount(t.Context(), newKey(t), authority.NewAccountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100000 {
		_, err := a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs(fmt.Sprintf("n%d.flood.example", i))})
		if err != nil {
			var p *acme.Problem
			if !errors.As(err, &p) || !errors.Is(err, acme.ErrRateLimited) {
				t.Fatalf("order %d: %v, want rateLimited", i+1, err)
			}
			t.Logf("order %d refused: %s", i+1, p.Detail)
			if i != 10000 {
				t.Fatalf("order %d refused, want the 10,001st", i+1)
			}
			return
		}
	}
	t.Fatal("100,000 pending orders accepted")
}
