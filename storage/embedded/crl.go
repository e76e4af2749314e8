package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/storage"
)

var _ storage.CRLs = (*Store)(nil)

// bucketCRL holds, per issuer, the CRL number last handed out
// ("number\x00ISSUER", 8 bytes big-endian), the latest CRL's fields
// ("meta\x00ISSUER", JSON) and its DER ("der\x00ISSUER", apart, so that
// polling for a new number reads no DER), and the revocation revision
// ("revision", 8 bytes), which reindex bumps whenever a certificate's
// revocation changes, in the transaction of that change.
const bucketCRL = "crl"

var crlRevisionKey = []byte("revision")

func crlKey(kind, issuer string) []byte { return []byte(kind + "\x00" + issuer) }

func getUint(b *bolt.Bucket, key []byte) uint64 {
	if v := b.Get(key); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func putUint(b *bolt.Bucket, key []byte, n uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, n))
}

// bumpRevocations is called by reindex in the transaction that changes
// a certificate's revocation.
func bumpRevocations(tx *bolt.Tx) error {
	b := tx.Bucket([]byte(bucketCRL))
	return putUint(b, crlRevisionKey, getUint(b, crlRevisionKey)+1)
}

func (s *Store) NextCRLNumber(ctx context.Context, issuer string, atLeast uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketCRL))
		key := crlKey("number", issuer)
		n = max(getUint(b, key)+1, atLeast)
		return putUint(b, key, n)
	})
	if err != nil {
		return 0, fmt.Errorf("embedded store: next CRL number of %s: %w", issuer, err)
	}
	return n, nil
}

func (s *Store) PutCRL(ctx context.Context, c *storage.CRL) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	meta, err := json.Marshal(c) // all but the DER
	if err != nil {
		return false, fmt.Errorf("embedded store: encode CRL of %s: %w", c.Issuer, err)
	}
	var stored bool
	err = s.db.Update(func(tx *bolt.Tx) error {
		stored = false
		b := tx.Bucket([]byte(bucketCRL))
		cur, err := loadCRLMeta(b, c.Issuer)
		if err != nil {
			return err
		}
		if cur != nil && cur.Number >= c.Number {
			return nil
		}
		if err := b.Put(crlKey("meta", c.Issuer), meta); err != nil {
			return err
		}
		stored = true
		return b.Put(crlKey("der", c.Issuer), c.DER)
	})
	return stored, err
}

func loadCRLMeta(b *bolt.Bucket, issuer string) (*storage.CRL, error) {
	raw := b.Get(crlKey("meta", issuer))
	if raw == nil {
		return nil, nil
	}
	var c storage.CRL
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("embedded store: decode CRL of %s: %w", issuer, err)
	}
	return &c, nil
}

func (s *Store) LatestCRLNumber(ctx context.Context, issuer string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c, err := loadCRLMeta(tx.Bucket([]byte(bucketCRL)), issuer)
		if c != nil {
			n = c.Number
		}
		return err
	})
	return n, err
}

func (s *Store) LatestCRL(ctx context.Context, issuer string) (*storage.CRL, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var c *storage.CRL
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketCRL))
		var err error
		if c, err = loadCRLMeta(b, issuer); err != nil || c == nil {
			return err
		}
		// Copied: bbolt reclaims what it returns when the view ends.
		c.DER = bytes.Clone(b.Get(crlKey("der", issuer)))
		return nil
	})
	if err == nil && c == nil {
		err = notFound("CRL", issuer)
	}
	return c, err
}

func (s *Store) RevocationRevision(ctx context.Context) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		n = getUint(tx.Bucket([]byte(bucketCRL)), crlRevisionKey)
		return nil
	})
	return n, err
}
