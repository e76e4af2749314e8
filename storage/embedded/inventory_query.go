package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var _ storage.Estate = (*Store)(nil)

// ListCertificates answers from one index, chosen by the filter (plan);
// each candidate's record is read and checked against the whole filter
// (storage.CertFilter.Match). One entry past the page is read to tell
// whether another page follows. The cursor is the hex of the last listed
// certificate's order key (notAfter, serial).
func (s *Store) ListCertificates(ctx context.Context, f storage.CertFilter, cursor string, limit int) ([]*acme.Certificate, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("embedded store: list certificates: limit %d is not positive", limit)
	}
	after, err := hex.DecodeString(cursor)
	if err != nil || (cursor != "" && len(after) <= 8) {
		return nil, "", fmt.Errorf("%w: certificate list cursor %q", storage.ErrNotFound, cursor)
	}
	var list []*acme.Certificate
	var next string
	err = s.db.View(func(tx *bolt.Tx) error {
		return scan(tx, f, after, func(c *acme.Certificate) bool {
			if len(list) == limit {
				next = hex.EncodeToString(orderKey(list[limit-1]))
				return false
			}
			list = append(list, c)
			return true
		})
	})
	if err != nil {
		return nil, "", err
	}
	return list, next, nil
}

// bounds is the notAfter range [lo, hi) of timeKeys a filter admits.
func bounds(f storage.CertFilter) (lo, hi uint64) {
	lo, hi = 0, math.MaxUint64
	now := timeKey(f.Now)
	if f.Status == acme.CertValid || f.ExpiringWithin > 0 || f.NotRenewed {
		lo = inc(now) // unexpired: notAfter after now
	}
	if f.Status == acme.CertExpired {
		hi = min(hi, inc(now))
	}
	if f.ExpiringWithin > 0 {
		hi = min(hi, inc(timeKey(f.Now.Add(f.ExpiringWithin))))
	}
	return lo, hi
}

// scan calls fn with each certificate matching f after the order key
// after, in order, until fn returns false. The index walked, most
// selective first:
//
//	Serials         each serial's record
//	NotRenewed      inv-renew up to Now (its own size: what is due)
//	SANSuffix       inv-san, the suffix's range (the names under it)
//	Account         inv-account, the account's notAfter range
//	Profile         inv-profile, the profile's notAfter range
//	Status revoked  inv-revoked, the notAfter range
//	otherwise       inv-notafter, the notAfter range (ExpiringWithin,
//	                Status valid or expired)
//
// The first three are gathered and sorted, the others walked in order.
// Filters without an index of their own (IssuedBefore; a second one of
// the above) are checked on the records the index yields.
func scan(tx *bolt.Tx, f storage.CertFilter, after []byte, fn func(*acme.Certificate) bool) error {
	lo, hi := bounds(f)
	visit := func(serial []byte) (bool, error) {
		c, err := load(tx, certs, string(serial))
		if err != nil {
			return false, err
		}
		if !f.Match(c) {
			return true, nil
		}
		return fn(c), nil
	}
	var gathered [][]byte // order keys
	add := func(na []byte, serial []byte) {
		if len(na) != 8 {
			return
		}
		if k := binary.BigEndian.Uint64(na); k < lo || k >= hi {
			return
		}
		key := append(bytes.Clone(na), serial...)
		if bytes.Compare(key, after) > 0 {
			gathered = append(gathered, key)
		}
	}
	switch {
	case len(f.Serials) > 0:
		b := tx.Bucket([]byte(bucketCerts))
		for _, serial := range f.Serials {
			raw := b.Get([]byte(serial))
			if raw == nil {
				continue
			}
			c, err := decode(certs, serial, raw)
			if err != nil {
				return err
			}
			add(orderKey(c)[:8], []byte(serial))
		}
	case f.NotRenewed:
		c := tx.Bucket([]byte(bucketInvRenew)).Cursor()
		now := timeKey(f.Now)
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= now; k, v = c.Next() {
			add(v, k[8:])
		}
	case f.SANSuffix != "":
		b := tx.Bucket([]byte(bucketInvSAN))
		for _, prefix := range sanPrefixes(f.SANSuffix) {
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				serial := k[len(prefix):]
				if prefix[len(prefix)-1] == '.' {
					// A name under the suffix: its serial follows its own 0.
					_, serial, _ = bytes.Cut(serial, []byte{0})
				}
				add(v, serial)
			}
		}
	default:
		bucket, prefix := bucketInvNotAfter, []byte(nil)
		switch {
		case f.Account != "":
			bucket, prefix = bucketInvAccount, []byte(f.Account+"\x00")
		case f.Profile != "":
			bucket, prefix = bucketInvProfile, []byte(f.Profile+"\x00")
		case f.Status == acme.CertRevoked:
			bucket = bucketInvRevoked
		}
		c := tx.Bucket([]byte(bucket)).Cursor()
		start := append(bytes.Clone(prefix), appendKey(nil, lo)...)
		if from := append(bytes.Clone(prefix), after...); bytes.Compare(from, start) > 0 {
			start = from
		}
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			rest := k[len(prefix):]
			if len(rest) <= 8 || binary.BigEndian.Uint64(rest) >= hi {
				break
			}
			if bytes.Equal(rest, after) {
				continue
			}
			if f.Status == acme.CertValid && bucket == bucketInvNotAfter && len(v) > 0 && v[0]&flagRevoked != 0 {
				continue // revoked: told by the entry, no need to read it
			}
			more, err := visit(rest[8:])
			if err != nil || !more {
				return err
			}
		}
		return nil
	}
	slices.SortFunc(gathered, bytes.Compare)
	gathered = slices.CompactFunc(gathered, bytes.Equal) // a certificate with two names under the suffix
	for _, k := range gathered {
		more, err := visit(k[8:])
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// sanPrefixes are the inv-san ranges of a suffix: the DNS name itself
// (ending in its 0), the names under it (ending in "."), and the IP
// address itself.
func sanPrefixes(suffix string) [][]byte {
	d := sanKey(acme.Identifier{Type: acme.IdentifierDNS, Value: suffix})
	i := sanKey(acme.Identifier{Type: acme.IdentifierIP, Value: suffix})
	return [][]byte{[]byte(d + "\x00"), []byte(d + "."), []byte(i + "\x00")}
}

// CountCertificates counts from inv-hours: whole hours of the key space
// by their counters, the part-hours at a range's ends by their entries in
// inv-notafter, so its cost is the number of hours the estate spans plus
// two hours' certificates, whatever the estate's size. NotRenewed is
// inv-renew up to now: the not-renewed certificates themselves.
func (s *Store) CountCertificates(ctx context.Context, now time.Time, expiringWithin []time.Duration) (storage.CertCounts, error) {
	counts := storage.CertCounts{Expiring: map[time.Duration]int64{}}
	if err := ctx.Err(); err != nil {
		return counts, err
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		n := timeKey(now)
		var revokedBefore, revokedAfter int64
		counts.Expired, revokedBefore = countRange(tx, 0, inc(n))
		counts.Valid, revokedAfter = countRange(tx, inc(n), math.MaxUint64)
		counts.Revoked = revokedBefore + revokedAfter
		for _, d := range expiringWithin {
			counts.Expiring[d], _ = countRange(tx, inc(n), inc(timeKey(now.Add(d))))
		}
		c := tx.Bucket([]byte(bucketInvRenew)).Cursor()
		for k, v := c.First(); k != nil && binary.BigEndian.Uint64(k) <= n; k, v = c.Next() {
			if len(v) == 8 && binary.BigEndian.Uint64(v) > n {
				counts.NotRenewed++
			}
		}
		return nil
	})
	return counts, err
}

// inc is k+1, short of overflow: the exclusive bound after k.
func inc(k uint64) uint64 {
	if k == math.MaxUint64 {
		return k
	}
	return k + 1
}

// countRange counts certificates whose notAfter key is in [lo, hi):
// unrevoked and revoked.
func countRange(tx *bolt.Tx, lo, hi uint64) (unrevoked, revoked int64) {
	if hi <= lo {
		return 0, 0
	}
	entries := func(lo, hi uint64) {
		c := tx.Bucket([]byte(bucketInvNotAfter)).Cursor()
		for k, v := c.Seek(appendKey(nil, lo)); k != nil && binary.BigEndian.Uint64(k) < hi; k, v = c.Next() {
			if len(v) > 0 && v[0]&flagRevoked != 0 {
				revoked++
			} else {
				unrevoked++
			}
		}
	}
	hLo, hHi := lo/hour, hi/hour
	if hLo == hHi {
		entries(lo, hi)
		return unrevoked, revoked
	}
	entries(lo, (hLo+1)*hour)
	c := tx.Bucket([]byte(bucketInvHours)).Cursor()
	for k, v := c.Seek(appendKey(nil, hLo+1)); k != nil && binary.BigEndian.Uint64(k) < hHi; k, v = c.Next() {
		unrevoked += int64(binary.BigEndian.Uint64(v))
		revoked += int64(binary.BigEndian.Uint64(v[8:]))
	}
	entries(hHi*hour, hi)
	return unrevoked, revoked
}
