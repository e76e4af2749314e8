package authority

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
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

// Who may revoke a certificate (§7.6), as audit records name them.
const (
	// ByAccount: the account that ordered the certificate.
	ByAccount = "account"
	// ByKey: whoever holds the certificate's private key, signing with
	// it as jwk.
	ByKey = "key"
	// ByAuthorizations: any other account holding, now, valid
	// authorizations for every identifier in the certificate (for a
	// wildcard, a wildcard authorization for its base). Neither
	// Boulder nor step-ca offers this way.
	ByAuthorizations = "authorizations"
)

// reasonsFor is what each requester may give. keyCompromise blocks the
// key from every future certificate and account, so it is taken only
// from those who had the key: its holder, and the account that ordered
// the certificate, whose CSR proved possession of it (certbot and lego
// revoke with the account unless told otherwise; refusing them
// keyCompromise would leave a compromised key usable). Boulder is
// stricter (keyCompromise only signed with the certificate's key); an
// internal CA's subscribers are known accounts. An account that merely
// holds authorizations for the names never had the key: it may give any
// other reason.
func reasonsFor(by string) []acme.RevocationReason {
	all := acme.SubscriberReasons()
	if by != ByAuthorizations {
		return all
	}
	var rs []acme.RevocationReason
	for _, r := range all {
		if r != acme.ReasonKeyCompromise {
			rs = append(rs, r)
		}
	}
	return rs
}

// Revoke revokes a certificate this CA issued, for one of the reasons RFC
// 5280 allows for an end-entity certificate. keyCompromise blocks the
// certificate's key (storage.BlockedKeys) in the same write; asked for a
// certificate already revoked for another reason, it turns that reason to
// keyCompromise (acme.Revoke) and blocks the key.
func (a *Authority) Revoke(ctx context.Context, req RevokeRequest) error {
	reason := acme.RevocationReason(req.Reason)
	if p := acme.CheckRevocationReason(reason); p != nil {
		return p
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
	by, err := a.requester(ctx, req, leaf, stored)
	if err != nil {
		return err
	}
	if allowed := reasonsFor(by); !slices.Contains(allowed, reason) {
		return acme.BadRevocationReason("reason code %d (%s) may be given only by the account that ordered the certificate or with the certificate's key; allowed for an account holding authorizations: %s",
			int(reason), reason, acme.ReasonList(allowed))
	}
	if err := a.forwardRevocation(ctx, serial, stored); err != nil {
		return err
	}
	now := a.now()
	var opts []storage.Option
	var blocked *storage.BlockedKey
	if reason == acme.ReasonKeyCompromise {
		blocked = &storage.BlockedKey{Hash: acme.KeyHash(leaf.RawSubjectPublicKeyInfo), Serial: stored.Serial, At: now}
		opts = append(opts, storage.BlockingKey(*blocked))
	}
	var before acme.Certificate
	// Keyed as stored: older certificates keep their form.
	_, err = a.cfg.Store.UpdateCertificate(ctx, stored.Serial, func(c *acme.Certificate) error {
		before = *c
		return acme.Revoke(c, int(reason), now)
	}, opts...)
	if errors.Is(err, acme.ErrAlreadyRevoked) && blocked != nil {
		// Revoked for keyCompromise already: the key was blocked with
		// it, unless that step failed (a Cluster's second step). Block
		// it now; one already blocked keeps its record.
		if berr := a.cfg.Store.BlockKey(ctx, *blocked); berr != nil {
			return fmt.Errorf("block key of certificate %s: %w", serial, berr)
		}
	}
	if err != nil {
		return notFound(err, "certificate")
	}
	attrs := []any{"serial", serial, "reason", int(reason), "requester", by}
	if req.Account != nil {
		attrs = append(attrs, "account", req.Account.ID)
	}
	if before.Revoked {
		attrs = append(attrs, "previous_reason", before.Reason)
	}
	if blocked != nil {
		attrs = append(attrs, "blocked_key", blocked.Hash)
	}
	a.audit(ctx, "certificate.revoke", attrs...)
	return nil
}

// forwardRevocation tells the CA of record (Config.Revoker) first: if it
// fails nothing is recorded, and the client, told so, may try again; if
// recording fails after it succeeded, the retry forwards again, which
// that CA takes as done already. A certificate acmed has revoked was
// forwarded then: it is not sent again.
func (a *Authority) forwardRevocation(ctx context.Context, serial string, stored *acme.Certificate) error {
	if a.cfg.Revoker == nil || stored.Revoked {
		return nil
	}
	err := a.cfg.Revoker.Revoke(ctx, serial)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ca.ErrUnavailable):
		a.log.WarnContext(ctx, "revocation postponed: the CA of record is unavailable", "serial", serial, "err", err)
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	a.log.ErrorContext(ctx, "revocation failed: the CA of record refused it", "serial", serial, "err", err)
	return acme.ServerInternal("revocation failed")
}

// requester applies §7.6 and says who is revoking (ByAccount, ByKey,
// ByAuthorizations), or refuses with unauthorized saying what is
// missing.
func (a *Authority) requester(ctx context.Context, req RevokeRequest, leaf *x509.Certificate, stored *acme.Certificate) (string, error) {
	if req.Account == nil {
		want, err := acme.Thumbprint(&jose.JSONWebKey{Key: leaf.PublicKey})
		if err != nil {
			return "", acme.BadPublicKey("%v", err)
		}
		if got, err := acme.Thumbprint(req.Key); err != nil || got != want {
			return "", acme.Unauthorized("the request is signed with jwk, and that is not the certificate's key; sign with the certificate's key, or with kid as the account that ordered the certificate or one holding valid authorizations for all its identifiers")
		}
		return ByKey, nil
	}
	if stored.AccountID == req.Account.ID {
		return ByAccount, nil
	}
	if len(leaf.URIs) > 0 {
		// A SPIFFE ID is bound to the EAB key of the account that
		// ordered the certificate: no authorization proves it.
		return "", acme.Unauthorized("this account did not order the certificate, and it names %s, which no authorization covers; only the ordering account or the certificate's key may revoke it", leaf.URIs[0])
	}
	now := a.now()
	var missing []string
	for _, id := range stored.Identifiers {
		base, wildcard := acme.SplitWildcard(id)
		az, err := a.cfg.Store.ValidAuthorization(ctx, req.Account.ID, base, wildcard)
		switch {
		case errors.Is(err, storage.ErrNotFound), err == nil && acme.AuthzStatus(az, now) != acme.StatusValid:
			if wildcard {
				missing = append(missing, fmt.Sprintf("%s (a wildcard authorization for %s)", id.Value, base.Value))
			} else {
				missing = append(missing, id.Value)
			}
		case err != nil:
			return "", err
		}
	}
	if len(missing) > 0 {
		return "", acme.Unauthorized("this account did not order the certificate and holds no valid authorization for %s; revoke with the ordering account, the certificate's key, or an account holding valid authorizations for every identifier in it",
			strings.Join(missing, ", "))
	}
	return ByAuthorizations, nil
}
