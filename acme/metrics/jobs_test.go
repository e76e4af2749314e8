package metrics_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/metrics"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// jobsStore is a real store that reports its queue.
type jobsStore interface {
	storage.Store
	metrics.JobStats
}

// acmed_jobs_pending and acmed_jobs_oldest_age_seconds are the store's
// queue at scrape time, on both backends: jobs queued count, and the
// oldest one's age is the scrape's clock minus its queue time; finished
// jobs leave the count, and an empty queue is 0 old.
func TestJobsPending(t *testing.T) {
	for _, tc := range []struct {
		name string
		// open returns the store and the clock its jobs are dated by:
		// the embedded store's injected one, the Redis server's.
		open func(t *testing.T) (jobsStore, func() time.Time)
	}{
		{"embedded", func(t *testing.T) (jobsStore, func() time.Time) {
			t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
			clock := func() time.Time { return t0 }
			s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{Logger: quiet(), Now: clock})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, clock
		}},
		{"redis", func(t *testing.T) (jobsStore, func() time.Time) {
			srv := redistest.Start(t)
			opts, err := redis.ParseURL(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			c := goredis.NewUniversalClient(opts)
			t.Cleanup(func() { c.Close() })
			if err := c.FlushDB(t.Context()).Err(); err != nil {
				t.Fatal(err)
			}
			s, err := redis.Open(t.Context(), srv.URL, redis.Config{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s, func() time.Time { return c.Time(context.Background()).Val() }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, storeClock := tc.open(t)
			var scrapeAt time.Time
			m := metrics.New(metrics.Config{Jobs: s, Now: func() time.Time { return scrapeAt }, Logger: quiet()})
			check := func(what string, pending float64, age func(float64) bool) {
				t.Helper()
				gotN, gotAge := count(t, m, "acmed_jobs_pending", ``), count(t, m, "acmed_jobs_oldest_age_seconds", ``)
				if gotN != pending || !age(gotAge) {
					t.Errorf("%s: acmed_jobs_pending %v, acmed_jobs_oldest_age_seconds %v; want %v pending", what, gotN, gotAge, pending)
				}
			}
			zero := func(a float64) bool { return a == 0 }
			check("empty", 0, zero)

			before := storeClock().Truncate(time.Millisecond)
			var claims []storage.Claim
			for i := range 2 {
				o := &acme.Order{ID: storage.ScopedID("acct1", fmt.Sprint("o", i)), AccountID: "acct1",
					Status: acme.StatusPending, Expires: before.Add(time.Hour)}
				if err := s.CreateOrder(ctx, o, nil); err != nil {
					t.Fatal(err)
				}
				var c storage.Claim
				if _, err := s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
					o.Status = acme.StatusProcessing
					return nil
				}, storage.Queue(storage.Job{OrderID: o.ID}, &c)); err != nil || c.ID == "" {
					t.Fatalf("queueing: claim %+v, %v", c, err)
				}
				claims = append(claims, c)
			}
			after := storeClock()
			// Scraped 90s after the last job was queued: the oldest is
			// 90s old, plus however long queueing took.
			scrapeAt = after.Add(90 * time.Second)
			slack := after.Sub(before).Seconds()
			check("2 queued", 2, func(a float64) bool { return a >= 90 && a <= 90+slack })

			if err := s.Finish(ctx, claims[0]); err != nil {
				t.Fatal(err)
			}
			check("1 finished", 1, func(a float64) bool { return a >= 90 && a <= 90+slack })
			if err := s.Finish(ctx, claims[1]); err != nil {
				t.Fatal(err)
			}
			check("both finished", 0, zero)
		})
	}
}
