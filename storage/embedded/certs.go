package embedded

import (
	"context"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var certs = resource[acme.Certificate]{
	bucket: bucketCerts,
	name:   "certificate",
	key:    func(c *acme.Certificate) string { return c.Serial },
}

func (s *Store) PutCertificate(ctx context.Context, c *acme.Certificate) error {
	return create(ctx, s, certs, c, nil)
}

func (s *Store) Certificate(ctx context.Context, serial string) (*acme.Certificate, error) {
	return get(ctx, s, certs, serial)
}

func (s *Store) UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error) (*acme.Certificate, error) {
	return update(ctx, s, certs, serial, fn, nil, storage.Options{})
}
