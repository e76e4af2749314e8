package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// A compare-and-set that loses every retry is ErrUnavailable, which the
// API answers with 503 + Retry-After, and not ErrConflict, which callers
// read as "that key is taken" (a key change would say so to the client).
func TestUpdateLosingEveryRaceIsUnavailable(t *testing.T) {
	srv := redistest.Start(t)
	s := open(t, srv.URL, redis.Config{})
	rival := open(t, srv.URL, redis.Config{})
	flush(t, client(t, srv.URL))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	o := &acme.Order{ID: "hot-order", AccountID: "acct-1", Status: acme.StatusPending,
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "hot.example"}}, Expires: now.Add(time.Hour), CreatedAt: now}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	tries := 0
	_, err := s.UpdateOrder(ctx, o.ID, func(cur *acme.Order) error {
		tries++
		// Another replica changes the order between this read and its
		// write, every time.
		if _, err := rival.UpdateOrder(context.WithoutCancel(ctx), o.ID, func(r *acme.Order) error {
			r.Expires = r.Expires.Add(time.Second)
			return nil
		}); err != nil {
			t.Fatalf("rival update: %v", err)
		}
		cur.NotAfter = now.Add(time.Duration(tries) * time.Minute)
		return nil
	})
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrConflict) {
		t.Fatalf("update that lost every race: %v, want ErrUnavailable and not ErrConflict", err)
	}
	if tries < 2 {
		t.Fatalf("fn ran %d times; the loop should have retried", tries)
	}
}
