package authority

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// RevokeRequest is a checked revokeCert request (§7.6): signed either by an
// account (Account set) or by the certificate's own key (Key set).
type RevokeRequest struct {
	CertDER []byte
	Reason  int
	Account *acme.Account
	Key     *jose.JSONWebKey
}

// allowedReason reports whether a subscriber may give an RFC 5280 reason
// code; cACompromise, certificateHold, removeFromCRL and aACompromise are
// the CA's to decide.
func allowedReason(code int) bool {
	switch code {
	case 0, 1, 3, 4, 5, 9:
		return true
	}
	return false
}

// Revoke revokes a certificate this CA issued.
func (a *Authority) Revoke(ctx context.Context, req RevokeRequest) error {
	if !allowedReason(req.Reason) {
		return acme.BadRevocationReason("reason %d is not allowed; use 0, 1, 3, 4, 5 or 9", req.Reason)
	}
	leaf, err := x509.ParseCertificate(req.CertDER)
	if err != nil {
		return acme.Malformed("cannot parse certificate: %v", err)
	}
	serial := acme.SerialHex(leaf.SerialNumber)
	stored, err := a.certificateBySerial(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return acme.NotFound("certificate was not issued by this CA")
	}
	if err != nil {
		return err
	}
	if block, _ := pem.Decode(stored.ChainPEM); block == nil || !bytes.Equal(block.Bytes, req.CertDER) {
		return acme.NotFound("certificate was not issued by this CA")
	}
	if err := a.mayRevoke(ctx, req, leaf, stored); err != nil {
		return err
	}
	// Keyed as stored: older certificates keep their form.
	if _, err := a.cfg.Store.UpdateCertificate(ctx, stored.Serial, func(c *acme.Certificate) error {
		return acme.Revoke(c, req.Reason, a.now())
	}); err != nil {
		return notFound(err, "certificate")
	}
	by := "certificate-key"
	if req.Account != nil {
		by = "account:" + req.Account.ID
	}
	a.audit(ctx, "certificate.revoke", "serial", serial, "reason", req.Reason, "by", by)
	return nil
}

// mayRevoke applies §7.6: the certificate's key may always revoke; an
// account may if it ordered the certificate or holds valid authorizations
// for all of its identifiers.
func (a *Authority) mayRevoke(ctx context.Context, req RevokeRequest, leaf *x509.Certificate, stored *acme.Certificate) error {
	if req.Account == nil {
		want, err := acme.Thumbprint(&jose.JSONWebKey{Key: leaf.PublicKey})
		if err != nil {
			return acme.BadPublicKey("%v", err)
		}
		if got, err := acme.Thumbprint(req.Key); err != nil || got != want {
			return acme.Unauthorized("the request is not signed by the certificate's key")
		}
		return nil
	}
	if stored.AccountID == req.Account.ID {
		return nil
	}
	now := a.now()
	for _, id := range stored.Identifiers {
		base, wildcard := acme.SplitWildcard(id)
		az, err := a.cfg.Store.ValidAuthorization(ctx, req.Account.ID, base, wildcard)
		if errors.Is(err, storage.ErrNotFound) || (err == nil && acme.AuthzStatus(az, now) != acme.StatusValid) {
			return acme.Unauthorized("account holds no valid authorization for %s", id.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
