package authority

import (
	"context"
	"errors"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// CertificateStatus is the certificate this CA issued with serial (any
// form acme.NormalizeSerial accepts), for a relying party asking whether
// it is revoked (OCSP). Nil with a nil error means there is none: never
// issued here, or deleted after --retention. Unlike the account's own
// certificate lookups it answers anyone: revocation status is public.
func (a *Authority) CertificateStatus(ctx context.Context, serial string) (*acme.Certificate, error) {
	canonical, ok := acme.NormalizeSerial(serial)
	if !ok {
		return nil, nil
	}
	cert, err := a.certificateBySerial(ctx, canonical)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return cert, nil
}
