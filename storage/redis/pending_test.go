package redis_test

import (
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// PendingJobs counts the jobs of every stream, the legacy one's too, and
// dates the oldest by its entry ID; finished jobs leave the count. On a
// Cluster the streams are on several shards.
func TestPendingJobs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
	}{
		{"single server", false},
		{"cluster", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var url string
			if tc.cluster {
				if testing.Short() {
					t.Skip("starts a three-node cluster")
				}
				url = redistest.StartCluster(t).URL
			} else {
				url = redistest.Start(t).URL
			}
			c := client(t, url)
			flush(t, c)
			s := open(t, url, redis.Config{Consumer: "holder"})
			ctx := t.Context()
			check := func(what string, wantN int64, wantOldest func(time.Time) bool) {
				t.Helper()
				n, oldest, err := s.PendingJobs(ctx)
				if err != nil {
					t.Fatalf("%s: PendingJobs: %v", what, err)
				}
				if n != wantN || !wantOldest(oldest) {
					t.Fatalf("%s: PendingJobs = %d, oldest %v; want %d", what, n, oldest, wantN)
				}
			}
			check("no streams yet", 0, time.Time.IsZero)

			// The Redis server's clock, which dates entry IDs.
			before := c.Time(ctx).Val().Truncate(time.Millisecond)
			var claims []storage.Claim
			for i := range 6 {
				claims = append(claims, queueClaim(t, s, fmt.Sprintf("o%d", i)))
			}
			after := c.Time(ctx).Val()
			queued := func(o time.Time) bool { return !o.Before(before) && !o.After(after) }
			check("6 jobs queued", 6, queued)

			// A job an earlier acmed left in its single stream, long ago.
			const legacy = "acmed:{jobs}"
			if err := c.XAdd(ctx, &goredis.XAddArgs{Stream: legacy, ID: "1000-0", Values: []any{"job", `{"OrderID":"acct1.old"}`}}).Err(); err != nil {
				t.Fatal(err)
			}
			check("and a legacy one", 7, func(o time.Time) bool { return o.Equal(time.UnixMilli(1000)) })
			if err := s.Finish(ctx, storage.Claim{ID: "1000-0"}); err != nil {
				t.Fatal(err)
			}
			check("legacy job finished", 6, queued)

			for i, cl := range claims {
				if err := s.Finish(ctx, cl); err != nil {
					t.Fatalf("Finish %+v: %v", cl, err)
				}
				left := int64(len(claims) - i - 1)
				if left == 0 {
					check("every job finished", 0, time.Time.IsZero)
				} else {
					check(fmt.Sprintf("%d finished", i+1), left, queued)
				}
			}
		})
	}
}
