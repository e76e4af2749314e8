package embedded

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// The inventory's indexes (storage.Inventory). Every key ends in the
// fields that order a listing, notAfter (timeKey) then the serial, so a
// query seeks and walks instead of scanning; the serial is last because it
// varies in length. Each entry is derived from one certificate record by
// certEntries, written in the transaction that writes the record and
// deleted with it.
const (
	// notAfter, serial → flags (flagRevoked): every certificate. Answers
	// listings by status or expiry, the sweep of certificates past
	// retention, and counts within an hour (see inv-hours).
	bucketInvNotAfter = "inv-notafter"
	// hour of notAfter → unrevoked, revoked (8 bytes each): counts by
	// hour, so CountCertificates adds at most an hour's entries at each end
	// of a range and one counter per hour in between.
	bucketInvHours = "inv-hours"
	// notAfter, serial: revoked certificates (--status revoked).
	bucketInvRevoked = "inv-revoked"
	// account, 0, notAfter, serial (--account).
	bucketInvAccount = "inv-account"
	// profile, 0, notAfter, serial (--profile).
	bucketInvProfile = "inv-profile"
	// 'd' and the DNS name with its labels reversed ("com.example.www"),
	// or 'i' and the IP address; 0, serial → notAfter (--san-suffix: the
	// names under a suffix are one range).
	bucketInvSAN = "inv-san"
	// renewal window start, serial → notAfter: unexpired certificates
	// neither revoked nor replaced (--not-renewed, the expiry scan). Those
	// that expire leave it at the next sweep.
	bucketInvRenew = "inv-renew"
	// account, 0, SHA-256 of the identifier set → the latest serial issued
	// for it: finds what a new certificate replaces.
	bucketInvIDSet = "inv-idset"
	// key → value: bookkeeping of the inventory (metaExpiredUpTo).
	bucketInvMeta = "inv-meta"
)

const flagRevoked = 1

// metaExpiredUpTo is the notAfter key up to which the sweep has taken
// expired certificates out of inv-renew and campaign-pending.
const metaExpiredUpTo = "expired-up-to"

// timeKey encodes t as 8 bytes that sort as the times do: Unix
// nanoseconds with the sign bit flipped, clamped to what they can hold.
func timeKey(t time.Time) uint64 {
	switch {
	case t.Before(minKeyTime):
		return 0
	case t.After(maxKeyTime):
		return math.MaxUint64
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

var (
	minKeyTime = time.Unix(0, math.MinInt64)
	maxKeyTime = time.Unix(0, math.MaxInt64)
)

func appendTime(b []byte, t time.Time) []byte { return binary.BigEndian.AppendUint64(b, timeKey(t)) }
func appendKey(b []byte, k uint64) []byte     { return binary.BigEndian.AppendUint64(b, k) }

// orderKey is what a listing is ordered by, and its cursor: notAfter then
// serial.
func orderKey(c *acme.Certificate) []byte {
	return append(appendTime(nil, c.NotAfter), c.Serial...)
}

// entry is one index entry.
type entry struct {
	bucket string
	key    string
	val    string
}

// certEntries is every index entry of c, but inv-idset's (kept apart: it
// points at the latest certificate of a set, not at each) and the counts.
// live is whether c is unexpired by the store's clock: an expired
// certificate has no place in the not-renewed or pending sets.
func certEntries(c *acme.Certificate, live bool) []entry {
	ok := orderKey(c)
	na := string(ok[:8])
	flags := "\x00"
	if c.Revoked {
		flags = "\x01"
	}
	es := []entry{
		{bucketInvNotAfter, string(ok), flags},
		{bucketInvAccount, c.AccountID + "\x00" + string(ok), ""},
		{bucketInvProfile, c.Profile + "\x00" + string(ok), ""},
	}
	if c.Revoked {
		es = append(es, entry{bucketInvRevoked, string(ok), ""})
	}
	for _, id := range c.Identifiers {
		es = append(es, entry{bucketInvSAN, sanKey(id) + "\x00" + c.Serial, na})
	}
	if live && !c.Revoked && c.ReplacedBy == "" {
		start, _ := c.RenewalWindow()
		es = append(es, entry{bucketInvRenew, string(appendTime(nil, start)) + c.Serial, na})
	}
	if live && c.CampaignID != "" && c.ReplacedBy == "" {
		es = append(es, entry{bucketCampaignPending, c.CampaignID + "\x00" + string(ok), ""})
	}
	return es
}

// sanKey is an identifier's place in inv-san: DNS names by reversed
// labels, so that a suffix is a key prefix; IP addresses whole.
func sanKey(id acme.Identifier) string {
	if id.Type == acme.IdentifierIP {
		return "i" + id.Value
	}
	labels := strings.Split(id.Value, ".")
	slices.Reverse(labels)
	return "d" + strings.Join(labels, ".")
}

// idSetKey names the account's identifier set, in any order.
func idSetKey(c *acme.Certificate) []byte {
	ids := make([]string, 0, len(c.Identifiers))
	for _, id := range c.Identifiers {
		ids = append(ids, string(id.Type)+":"+id.Value)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	sum := sha256.Sum256([]byte(strings.Join(ids, "\n")))
	return append([]byte(c.AccountID+"\x00"), sum[:]...)
}

// reindex moves c's index entries from old to cur (either may be nil)
// and its count, writing only what changed. old's entries are taken as
// if it were unexpired: the sweep may not yet have taken an expired one
// out of the not-renewed and pending sets, and a change now (replaced
// after it lapsed) must not leave it there for good. Deleting what is
// not there writes nothing.
func reindex(tx *bolt.Tx, old, cur *acme.Certificate, now time.Time) error {
	if old != nil && cur != nil && (old.Revoked != cur.Revoked || old.Reason != cur.Reason) {
		// CRL publishers watch the revision for a rebuild (crl.go); a
		// reason change (keyCompromise after another) is one too.
		if err := bumpRevocations(tx); err != nil {
			return err
		}
	}
	var before, after []entry
	if old != nil {
		before = certEntries(old, true)
	}
	if cur != nil {
		after = certEntries(cur, now.Before(cur.NotAfter))
	}
	keep := map[entry]bool{}
	for _, e := range after {
		keep[e] = true
	}
	for _, e := range before {
		if keep[e] {
			delete(keep, e)
			continue
		}
		if err := tx.Bucket([]byte(e.bucket)).Delete([]byte(e.key)); err != nil {
			return err
		}
	}
	for _, e := range after {
		if keep[e] {
			if err := tx.Bucket([]byte(e.bucket)).Put([]byte(e.key), []byte(e.val)); err != nil {
				return err
			}
		}
	}
	if old != nil && cur != nil && old.Revoked == cur.Revoked && old.NotAfter.Equal(cur.NotAfter) {
		return nil
	}
	if old != nil {
		if err := count(tx, old, -1); err != nil {
			return err
		}
	}
	if cur != nil {
		return count(tx, cur, 1)
	}
	return nil
}

const hour = uint64(time.Hour)

// count adds delta to c's hour in inv-hours. The hours are of the key
// space (timeKey / 1h), not of the clock: any fixed slicing serves.
func count(tx *bolt.Tx, c *acme.Certificate, delta int64) error {
	b := tx.Bucket([]byte(bucketInvHours))
	k := appendKey(nil, timeKey(c.NotAfter)/hour)
	var n [2]int64
	if v := b.Get(k); len(v) == 16 {
		n[0], n[1] = int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))
	}
	i := 0
	if c.Revoked {
		i = 1
	}
	n[i] += delta
	if n[0] == 0 && n[1] == 0 {
		return b.Delete(k)
	}
	return b.Put(k, binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, uint64(n[0])), uint64(n[1])))
}

// insertCert stores a new certificate with everything its issuance
// records, in the caller's transaction: its index entries, and its
// replacement of an earlier one, named (c.Replaces) or else found as the
// account's latest certificate for the same identifier set that is not
// replaced. The earlier one gets ReplacedBy, leaving the not-renewed and
// pending sets. A replaced certificate already gone (swept) is no error;
// one already replaced keeps its first replacement.
func insertCert(tx *bolt.Tx, c *acme.Certificate, now time.Time) error {
	b := tx.Bucket([]byte(bucketCerts))
	if b.Get([]byte(c.Serial)) != nil {
		return conflict(certs.name, c.Serial)
	}
	cur := *c // the caller's copy stays as given: a batch may run twice
	sets := tx.Bucket([]byte(bucketInvIDSet))
	setKey := idSetKey(&cur)
	if cur.Replaces == "" {
		if latest := sets.Get(setKey); latest != nil {
			old, err := load(tx, certs, string(latest))
			if err == nil && old.ReplacedBy == "" {
				cur.Replaces = old.Serial
			}
		}
	}
	if cur.Replaces != "" {
		old, err := load(tx, certs, cur.Replaces)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return err
		case old.ReplacedBy == "":
			was := *old
			old.ReplacedBy = cur.Serial
			if err := putCert(tx, &was, old, now); err != nil {
				return err
			}
		}
	}
	if err := sets.Put(setKey, []byte(cur.Serial)); err != nil {
		return err
	}
	return putCert(tx, nil, &cur, now)
}

// putCert writes cur over old (nil: a new record) with its indexes.
func putCert(tx *bolt.Tx, old, cur *acme.Certificate, now time.Time) error {
	raw, err := encode(certs, cur.Serial, cur)
	if err != nil {
		return err
	}
	if err := reindex(tx, old, cur, now); err != nil {
		return err
	}
	return tx.Bucket([]byte(bucketCerts)).Put([]byte(cur.Serial), raw)
}

// deleteCert deletes a certificate record and everything that points at
// it: index entries, its identifier set's latest if it is that, and the
// alerts' memory of it.
func deleteCert(tx *bolt.Tx, c *acme.Certificate, now time.Time) error {
	if err := reindex(tx, c, nil, now); err != nil {
		return err
	}
	sets := tx.Bucket([]byte(bucketInvIDSet))
	setKey := idSetKey(c)
	if bytes.Equal(sets.Get(setKey), []byte(c.Serial)) {
		if err := sets.Delete(setKey); err != nil {
			return err
		}
	}
	for _, event := range []string{acme.AlertNotRenewed, acme.AlertCampaignPending} {
		if err := tx.Bucket([]byte(bucketAlertsSent)).Delete(alertSentKey(event, c.Serial)); err != nil {
			return err
		}
	}
	return tx.Bucket([]byte(bucketCerts)).Delete([]byte(c.Serial))
}

// buildInventory indexes every certificate of a file written before the
// inventory, once, when Open creates its buckets. The latest of an
// identifier set is the one with the latest notBefore; replacements that
// happened before cannot be told and are not recorded. A record that does
// not decode is left out, as the sweep leaves it.
func buildInventory(tx *bolt.Tx, now time.Time) error {
	latest := map[string]*acme.Certificate{}
	err := tx.Bucket([]byte(bucketCerts)).ForEach(func(k, v []byte) error {
		c, err := decode(certs, string(k), v)
		if err != nil {
			return nil
		}
		set := string(idSetKey(c))
		if l := latest[set]; l == nil || c.NotBefore.After(l.NotBefore) {
			latest[set] = c
		}
		return reindex(tx, nil, c, now)
	})
	if err != nil {
		return fmt.Errorf("indexing certificates: %w", err)
	}
	for set, c := range latest {
		if err := tx.Bucket([]byte(bucketInvIDSet)).Put([]byte(set), []byte(c.Serial)); err != nil {
			return err
		}
	}
	return nil
}
