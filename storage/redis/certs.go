package redis

import (
	"context"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var certs = resource[acme.Certificate]{
	name: "certificate",
	key:  certKey,
	id:   func(c *acme.Certificate) string { return c.Serial },
}

// PutCertificate keeps c until Retention after it expires: long enough to
// answer revocation and lookups for it, not for ever.
func (s *Store) PutCertificate(ctx context.Context, c *acme.Certificate) error {
	raw, err := encode(certs, c)
	if err != nil {
		return err
	}
	ok, err := s.setNXDurably(ctx, certKey(c.Serial), raw, msDuration(s.ttlCert(c))).Result()
	if err != nil {
		return fail(ctx, "put certificate", err)
	}
	if !ok {
		return conflict("certificate", c.Serial)
	}
	return nil
}

func (s *Store) Certificate(ctx context.Context, serial string) (*acme.Certificate, error) {
	return get(ctx, s, certs, serial)
}

func (s *Store) UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error) (*acme.Certificate, error) {
	return update(ctx, s, certs, serial, fn, storage.Options{}, func(_ context.Context, raw []byte, cur *acme.Certificate, next []byte) (plan, error) {
		var p plan
		p.compare(certKey(serial), raw)
		p.set(certKey(serial), next, s.ttlCert(cur))
		return p, nil
	})
}
