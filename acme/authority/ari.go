package authority

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// RenewalInfo is a certificate's renewal information (RFC 9773 §4.2):
// when to renew, why (ExplanationURL, from an operator's campaign), and
// when to ask again.
type RenewalInfo struct {
	Start, End     time.Time
	ExplanationURL string
	RetryAfter     time.Duration
}

// ARIEnabled reports whether the server offers renewal information: it
// does unless its issuing certificate has no subject key identifier.
func (a *Authority) ARIEnabled() bool { return len(a.cfg.IssuerKeyID) > 0 }

// CertID is the ARI certificate identifier of one of this CA's
// certificates, by its serial as stored (either form).
func (a *Authority) CertID(serial string) string {
	if canonical, ok := acme.NormalizeSerial(serial); ok {
		serial = canonical
	}
	return acme.CertID(a.cfg.IssuerKeyID, serial)
}

// RenewalInfo answers an unauthenticated renewalInfo request for certID.
func (a *Authority) RenewalInfo(ctx context.Context, certID string) (*RenewalInfo, error) {
	serial, p := a.parseCertID(certID)
	if p != nil {
		return nil, p
	}
	cert, err := a.certificateBySerial(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, acme.NotFound("certificate %s was not issued by this CA", serial)
	}
	if err != nil {
		return nil, err
	}
	now := a.now()
	info := &RenewalInfo{RetryAfter: cert.ARIRetryAfter(now)}
	info.Start, info.End = cert.SuggestedWindow(now)
	if cert.CampaignID != "" {
		info.ExplanationURL = a.campaignExplanation(ctx, cert.CampaignID)
	}
	return info, nil
}

// parseCertID checks that certID names a certificate of this CA and
// returns its canonical serial. Another issuer's is unknown here, as its
// serial would be.
func (a *Authority) parseCertID(certID string) (string, *acme.Problem) {
	if !a.ARIEnabled() {
		return "", acme.NotFound("this server offers no renewal information")
	}
	aki, serial, p := acme.ParseCertID(certID)
	if p != nil {
		return "", p
	}
	known := bytes.Equal(aki, a.cfg.IssuerKeyID)
	if !known && a.cfg.Issuers != nil {
		// A certificate of a retired intermediate names that one.
		known = a.cfg.Issuers.KnowsIssuerKeyID(aki)
	}
	if !known {
		return "", acme.NotFound("certID %q: unknown issuer: the authority key identifier is not this CA's", certID)
	}
	return serial, nil
}

// certificateBySerial reads a certificate by canonical serial, and then,
// if that finds none, by the form acmed stored serials in before it had
// one (hex without leading zeros); the two differ for one serial in eight
// or so. Certificates issued since are found at once.
func (a *Authority) certificateBySerial(ctx context.Context, serial string) (*acme.Certificate, error) {
	cert, err := a.cfg.Store.Certificate(ctx, serial)
	if legacy := acme.LegacySerial(serial); errors.Is(err, storage.ErrNotFound) && legacy != serial {
		cert, err = a.cfg.Store.Certificate(ctx, legacy)
	}
	return cert, err
}

// campaignReader is the part of storage.Campaigns renewal information
// reads; a store without campaigns has no explanation to give.
type campaignReader interface {
	Campaign(ctx context.Context, id string) (*acme.Campaign, error)
}

// campaignExplanation is the explanation URL of a campaign, "" for none.
// The window is the answer's substance, so a failed read only loses the
// URL, with a warning.
func (a *Authority) campaignExplanation(ctx context.Context, id string) string {
	cs, ok := a.cfg.Store.(campaignReader)
	if !ok {
		return ""
	}
	c, err := cs.Campaign(ctx, id)
	if err != nil {
		if !errors.Is(err, storage.ErrNotFound) {
			a.log.WarnContext(ctx, "renewal information without the campaign's explanation URL", "campaign", id, "err", err)
		}
		return ""
	}
	return c.ExplanationURL
}

// replacing checks a new order's replaces (RFC 9773 §5) and returns the
// replaced certificate's serial as stored: it must be this CA's, the
// account's, share an identifier with the order (ids, normalised), and
// not be replaced already.
func (a *Authority) replacing(ctx context.Context, acct *acme.Account, ids []acme.Identifier, certID string) (string, error) {
	serial, p := a.parseCertID(certID)
	if p != nil {
		return "", p
	}
	cert, err := a.certificateBySerial(ctx, serial)
	if errors.Is(err, storage.ErrNotFound) {
		return "", acme.NotFound("replaces: certificate %s was not issued by this CA", serial)
	}
	if err != nil {
		return "", err
	}
	// Another account learns nothing more about the certificate than
	// that it is not theirs.
	if cert.AccountID != acct.ID {
		return "", acme.Unauthorized("replaces: certificate %s belongs to another account", serial)
	}
	if !shareIdentifier(cert.Identifiers, ids) {
		return "", acme.Malformed("replaces: certificate %s shares no identifier with the order", serial)
	}
	if cert.ReplacedBy != "" {
		return "", acme.AlreadyReplaced("replaces: certificate %s was already replaced by certificate %s", serial, cert.ReplacedBy)
	}
	return cert.Serial, nil
}

// shareIdentifier reports whether a and b have an identifier in common;
// both are normalised, so equal ones are equal values.
func shareIdentifier(a, b []acme.Identifier) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}
