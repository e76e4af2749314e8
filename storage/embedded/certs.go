package embedded

import (
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var certs = resource[acme.Certificate]{
	bucket: bucketCerts,
	name:   "certificate",
	key:    func(c *acme.Certificate) string { return c.Serial },
}

// PutCertificate stores c with its inventory entries and replacement
// (insertCert) in one transaction.
func (s *Store) PutCertificate(ctx context.Context, c *acme.Certificate) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Batch(func(tx *bolt.Tx) error { return insertCert(tx, c, s.now()) })
}

func (s *Store) Certificate(ctx context.Context, serial string) (*acme.Certificate, error) {
	return get(ctx, s, certs, serial)
}

// UpdateCertificate moves the inventory's entries with the change
// (revocation leaves the valid and not-renewed sets), and blocks the key
// BlockingKey names, in its transaction.
func (s *Store) UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error, opts ...storage.Option) (*acme.Certificate, error) {
	now := s.now()
	o := storage.Apply(opts)
	return update(ctx, s, certs, serial, fn, func(tx *bolt.Tx, old, cur *acme.Certificate) error {
		if o.BlockKey != nil {
			if err := putBlockedKey(tx, *o.BlockKey); err != nil {
				return err
			}
		}
		return reindex(tx, old, cur, now)
	}, storage.Options{})
}
