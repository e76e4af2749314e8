package embedded

import (
	"bytes"
	"context"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

const (
	defaultRetention  = 720 * time.Hour
	defaultSweepEvery = time.Hour
	// authzSlack keeps an authorization a while past its own retention: a
	// reused one may be listed by an order that expires up to an order
	// lifetime after it.
	authzSlack = 48 * time.Hour
)

// expiry returns when a record of type T, encoded in raw, may go: at(v)
// after decoding it into v. A record that does not decode is kept, so a
// sweep never deletes what it cannot judge.
func expiry[T any](at func(*T) time.Time) func(raw []byte) (time.Time, bool) {
	return func(raw []byte) (time.Time, bool) {
		v := new(T)
		if record.Unmarshal(raw, v) != nil {
			return time.Time{}, false
		}
		return at(v), true
	}
}

// Sweep deletes what has outlived its use, so the file does not grow
// without bound (DESIGN.md decision 5): orders Retention after they
// expire, authorizations a little later, certificates Retention after
// their notAfter, and the index entries that pointed at them. Accounts
// stay. It returns how many records it deleted.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	cutoff := s.now().Add(-s.retention)
	deleted := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			bucket string
			after  func([]byte) (time.Time, bool)
		}{
			{bucketOrders, expiry(func(o *acme.Order) time.Time { return o.Expires })},
			{bucketAuthzs, expiry(func(a *acme.Authorization) time.Time { return a.Expires.Add(authzSlack) })},
			{bucketCerts, expiry(func(c *acme.Certificate) time.Time { return c.NotAfter })},
		} {
			n, err := sweepBucket(tx.Bucket([]byte(b.bucket)), func(v []byte) bool {
				after, ok := b.after(v)
				return ok && after.Before(cutoff)
			})
			if err != nil {
				return err
			}
			deleted += n
		}
		for _, idx := range []struct{ index, target string }{
			{bucketAccountOrders, bucketOrders},
			{bucketValidAuthzs, bucketAuthzs},
		} {
			target := tx.Bucket([]byte(idx.target))
			n, err := sweepBucket(tx.Bucket([]byte(idx.index)), func(id []byte) bool {
				return target.Get(id) == nil
			})
			if err != nil {
				return err
			}
			deleted += n
		}
		return nil
	})
	return deleted, err
}

// sweepBucket deletes every entry whose value gone reports as gone.
func sweepBucket(b *bolt.Bucket, gone func([]byte) bool) (int, error) {
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if v != nil && gone(v) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// sweepLoop runs Sweep every interval until the store closes. A failed
// sweep is simply tried again next time: nothing depends on its timing.
func (s *Store) sweepLoop(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			_, _ = s.Sweep(context.Background())
		}
	}
}
