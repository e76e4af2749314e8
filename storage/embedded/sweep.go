package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

const defaultSweepEvery = time.Hour

// Sweep deletes what has outlived its use, so the file does not grow
// without bound (DESIGN.md decision 5), by the rule storage.Retention
// states for every backend: orders and certificates past their
// XUntil time, authorizations past theirs that no order still kept lists,
// and the index entries that pointed at what went. Accounts stay. A record
// that does not decode is kept: a sweep never deletes what it cannot
// judge. It returns how many records it deleted.
func (s *Store) Sweep(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	now := s.now()
	gone := func(until time.Time) bool { return !now.Before(until) }
	deleted := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		// Authorizations past their own time, kept yet if a kept order
		// lists one: first gather them, then the orders strike theirs.
		doomedAuthzs := map[string]bool{}
		err := tx.Bucket([]byte(bucketAuthzs)).ForEach(func(k, v []byte) error {
			var a acme.Authorization
			if v != nil && record.Unmarshal(v, &a) == nil && gone(s.keep.AuthorizationUntil(&a)) {
				doomedAuthzs[string(k)] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		n, err := sweepBucket(tx.Bucket([]byte(bucketOrders)), func(v []byte) bool {
			var o acme.Order
			if record.Unmarshal(v, &o) != nil {
				return false
			}
			if gone(s.keep.OrderUntil(&o)) {
				return true
			}
			for _, id := range o.AuthzIDs {
				delete(doomedAuthzs, id)
			}
			return false
		})
		if err != nil {
			return err
		}
		deleted += n
		authzs := tx.Bucket([]byte(bucketAuthzs))
		for id := range doomedAuthzs {
			if err := authzs.Delete([]byte(id)); err != nil {
				return err
			}
			deleted++
		}
		n, err = s.sweepCerts(tx, now)
		if err != nil {
			return err
		}
		deleted += n
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

// sweepCerts deletes the certificates past storage.Retention with their
// index entries, found by inv-notafter (notAfter + Finished <= now), and
// takes those that expired since the last sweep out of the not-renewed
// and pending sets: the sweep costs what it removes, not the estate.
func (s *Store) sweepCerts(tx *bolt.Tx, now time.Time) (int, error) {
	meta := tx.Bucket([]byte(bucketInvMeta))
	from := uint64(0)
	if v := meta.Get([]byte(metaExpiredUpTo)); len(v) == 8 {
		from = binary.BigEndian.Uint64(v)
	}
	upTo := inc(timeKey(now))
	expired, err := certsIn(tx, from, upTo)
	if err != nil {
		return 0, err
	}
	for _, c := range expired {
		if err := reindexExpired(tx, c); err != nil {
			return 0, err
		}
	}
	if err := meta.Put([]byte(metaExpiredUpTo), appendKey(nil, max(from, upTo))); err != nil {
		return 0, err
	}
	// Retention runs from notAfter for a fixed time.
	keepFor := s.keep.CertificateUntil(&acme.Certificate{NotAfter: now}).Sub(now)
	doomed, err := certsIn(tx, 0, inc(timeKey(now.Add(-keepFor))))
	if err != nil {
		return 0, err
	}
	for _, c := range doomed {
		if err := deleteCert(tx, c, now); err != nil {
			return 0, err
		}
	}
	return len(doomed), nil
}

// certsIn reads the certificates whose notAfter key is in [lo, hi). An
// index entry whose record is gone is deleted; a record that does not
// decode is left alone, as the sweep never deletes what it cannot judge.
func certsIn(tx *bolt.Tx, lo, hi uint64) ([]*acme.Certificate, error) {
	var found []*acme.Certificate
	var dangling [][]byte
	c := tx.Bucket([]byte(bucketInvNotAfter)).Cursor()
	for k, _ := c.Seek(appendKey(nil, lo)); k != nil && binary.BigEndian.Uint64(k) < hi; k, _ = c.Next() {
		serial := string(k[8:])
		raw := tx.Bucket([]byte(bucketCerts)).Get([]byte(serial))
		if raw == nil {
			dangling = append(dangling, bytes.Clone(k))
			continue
		}
		if cert, err := decode(certs, serial, raw); err == nil {
			found = append(found, cert)
		}
	}
	for _, k := range dangling {
		if err := tx.Bucket([]byte(bucketInvNotAfter)).Delete(k); err != nil {
			return nil, err
		}
	}
	return found, nil
}

// reindexExpired deletes the entries c had only while unexpired: its
// place in the not-renewed and pending sets.
func reindexExpired(tx *bolt.Tx, c *acme.Certificate) error {
	expired := map[entry]bool{}
	for _, e := range certEntries(c, false) {
		expired[e] = true
	}
	for _, e := range certEntries(c, true) {
		if !expired[e] {
			if err := tx.Bucket([]byte(e.bucket)).Delete([]byte(e.key)); err != nil {
				return err
			}
		}
	}
	return nil
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
			s.sweepGuarded()
		}
	}
}
