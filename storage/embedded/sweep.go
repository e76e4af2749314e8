package embedded

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"
)

const (
	defaultRetention  = 720 * time.Hour
	defaultSweepEvery = time.Hour
	// authzSlack keeps an authorization a while past its own retention: a
	// reused one may be listed by an order that expires up to an order
	// lifetime after it.
	authzSlack = 48 * time.Hour
)

// expiring is what Sweep reads of a resource to judge it.
type expiring struct {
	Expires  time.Time
	NotAfter time.Time
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
			after  func(expiring) time.Time
		}{
			{bucketOrders, func(e expiring) time.Time { return e.Expires }},
			{bucketAuthzs, func(e expiring) time.Time { return e.Expires.Add(authzSlack) }},
			{bucketCerts, func(e expiring) time.Time { return e.NotAfter }},
		} {
			n, err := sweepBucket(tx.Bucket([]byte(b.bucket)), func(v []byte) bool {
				var e expiring
				return json.Unmarshal(v, &e) == nil && b.after(e).Before(cutoff)
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
