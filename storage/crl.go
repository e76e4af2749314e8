package storage

import (
	"context"
	"time"
)

// CRL is the latest certificate revocation list built for one issuing CA,
// as every replica serves it.
type CRL struct {
	// Issuer names the issuing CA (ca.CRLName).
	Issuer string
	// Number is the CRL number (RFC 5280 §5.2.3), from NextCRLNumber.
	Number uint64
	// Revision is the RevocationRevision read before the revoked
	// certificates were listed: a later revision means the CRL may lack
	// a revocation.
	Revision uint64
	// DistributionPoint is the URL in the CRL's issuing distribution
	// point; a replica configured with another rebuilds it.
	DistributionPoint      string
	ThisUpdate, NextUpdate time.Time
	// Entries is how many certificates it lists.
	Entries int
	// DER is the CRL. Backends keep it apart from the other fields, which
	// they may encode as JSON, so that a poll for a new number reads no
	// DER.
	DER []byte `json:"-"`
}

// CRLs keeps what replicas share to publish CRLs: a CRL number per
// issuer that only grows, the latest CRL per issuer, and a revision of
// the revocations. Building a CRL is one replica's work at a time (a
// Leases lease); every replica serves the latest stored.
type CRLs interface {
	// NextCRLNumber returns a number for issuer's next CRL, atomically:
	// greater than every number it returned for issuer before, on any
	// replica, and at least atLeast. A floor from the clock keeps numbers
	// growing even over a store restored from a backup.
	NextCRLNumber(ctx context.Context, issuer string, atLeast uint64) (uint64, error)
	// PutCRL stores c as its issuer's latest unless the latest stored has
	// a Number at least c's (a builder that lost its lease part way, or
	// was slower than another); it reports whether c was stored.
	PutCRL(ctx context.Context, c *CRL) (bool, error)
	// LatestCRLNumber returns the Number of issuer's latest CRL, 0 when
	// there is none: a cheap read for replicas polling for a new CRL.
	LatestCRLNumber(ctx context.Context, issuer string) (uint64, error)
	// LatestCRL returns issuer's latest CRL; ErrNotFound when none.
	LatestCRL(ctx context.Context, issuer string) (*CRL, error)
	// RevocationRevision changes with every write that revokes a
	// certificate (Certificates.UpdateCertificate setting Revoked, on any
	// replica). It only tells that something changed since it was read:
	// compare it for equality only.
	RevocationRevision(ctx context.Context) (uint64, error)
}
