package storagetest

import (
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func testCertificates(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	_, err := s.Certificate(ctx, "1a")
	mustBe(t, "Certificate before put", err, storage.ErrNotFound)
	_, err = s.UpdateCertificate(ctx, "1a", func(*acme.Certificate) error { return nil })
	mustBe(t, "UpdateCertificate before put", err, storage.ErrNotFound)

	want := newCertificate("1a", "acct-1", "order-1")
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, want))
	got, err := s.Certificate(ctx, "1a")
	mustNot(t, "Certificate", err)
	mustEqual(t, "Certificate", got, want)

	mustBe(t, "PutCertificate of a taken serial", s.PutCertificate(ctx, newCertificate("1a", "acct-2", "order-2")), storage.ErrConflict)
	got, err = s.Certificate(ctx, "1a")
	mustNot(t, "Certificate", err)
	mustEqual(t, "certificate after the conflict", got, want)

	revokedAt := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	want.Revoked, want.RevokedAt, want.Reason = true, revokedAt, 4
	got, err = s.UpdateCertificate(ctx, "1a", func(c *acme.Certificate) error {
		c.Revoked, c.RevokedAt, c.Reason = true, revokedAt, 4
		return nil
	})
	mustNot(t, "UpdateCertificate", err)
	mustEqual(t, "UpdateCertificate result", got, want)
	got, err = s.Certificate(ctx, "1a")
	mustNot(t, "Certificate", err)
	mustEqual(t, "revoked certificate", got, want)

	// A rotated intermediate's certificate keeps its issuer, through an
	// update too.
	rotated := newCertificate("2b", "acct-3", "order-3")
	rotated.Issuer = "7d41c09e5a2b3f60"
	mustNot(t, "PutCertificate of a rotated issuer's", s.PutCertificate(ctx, rotated))
	got, err = s.UpdateCertificate(ctx, "2b", func(c *acme.Certificate) error {
		c.Revoked, c.RevokedAt, c.Reason = true, revokedAt, 1
		return nil
	})
	mustNot(t, "UpdateCertificate of a rotated issuer's", err)
	rotated.Revoked, rotated.RevokedAt, rotated.Reason = true, revokedAt, 1
	mustEqual(t, "rotated issuer's certificate after revocation", got, rotated)
	got, err = s.Certificate(ctx, "2b")
	mustNot(t, "Certificate", err)
	mustEqual(t, "rotated issuer's certificate", got, rotated)
}
