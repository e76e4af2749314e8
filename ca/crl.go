package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// oidIssuingDistributionPoint is id-ce-issuingDistributionPoint (RFC 5280
// §5.2.5).
var oidIssuingDistributionPoint = asn1.ObjectIdentifier{2, 5, 29, 28}

// crlNameBytes is how many leading bytes of the issuer's subject key
// identifier name its CRL: 64 bits tell apart any CAs one acmed will
// ever have, and keep the URL short.
const crlNameBytes = 8

// CRLName is the short, stable name of an issuing CA in its CRL's URL
// (/crl/NAME.crl): the lower-case hex of the first 8 bytes of its subject
// key identifier. It stays the same for as long as the CA's key does, so
// a CA certificate renewed over the same key keeps its URL, and one with
// a new key gets its own. A CA certificate without a subject key
// identifier (made elsewhere) is named by the one RFC 7093 §2 method 1
// gives its key.
func CRLName(issuer *x509.Certificate) string {
	skid := issuer.SubjectKeyId
	if len(skid) == 0 {
		var err error
		if skid, err = subjectKeyID(issuer.PublicKey); err != nil {
			// A CA whose key cannot be marshalled could not have
			// been loaded; name it by its certificate instead.
			skid = issuer.Raw
		}
	}
	return hex.EncodeToString(skid[:min(len(skid), crlNameBytes)])
}

// CRLName is the name of the issuing intermediate's CRL (see CRLName).
func (l *Local) CRLName() string { return l.name }

// CRLEntry is one revoked certificate on a CRL.
type CRLEntry struct {
	Serial    *big.Int
	RevokedAt time.Time
	// Reason is the RFC 5280 §5.3.1 CRLReason; 0 (unspecified) is left
	// out of the entry, as that section asks.
	Reason int
}

// CRLRequest is what a CRL says besides who signs it.
type CRLRequest struct {
	// Number is the CRL number (RFC 5280 §5.2.3): positive, and greater
	// than that of every CRL the issuer signed before.
	Number                 *big.Int
	ThisUpdate, NextUpdate time.Time
	Entries                []CRLEntry
	// DistributionPoint is the URL in the CRL distribution points of the
	// certificates this CRL covers; it goes into the CRL's issuing
	// distribution point, so a relying party can tell the CRL is the one
	// the certificate names (RFC 5280 §6.3.3 b.2). "" leaves it out.
	DistributionPoint string
}

// SignCRL signs a CRL over the issuing intermediate's certificates, in
// DER: version 2, with the authority key identifier of the
// intermediate, the CRL number, and a critical issuing distribution
// point saying it covers only end-entity certificates (the intermediate
// signs no CA), under DistributionPoint.
func (l *Local) SignCRL(ctx context.Context, req CRLRequest) ([]byte, error) {
	return signCRL(ctx, l.cfg, l.intermediate, l.key, req)
}

func signCRL(ctx context.Context, cfg Config, issuer *x509.Certificate, key crypto.Signer, req CRLRequest) ([]byte, error) {
	switch {
	case req.Number == nil || req.Number.Sign() <= 0:
		return nil, errors.New("ca: CRL number must be positive")
	case req.ThisUpdate.IsZero() || !req.NextUpdate.After(req.ThisUpdate):
		return nil, fmt.Errorf("ca: CRL nextUpdate %s is not after thisUpdate %s", req.NextUpdate, req.ThisUpdate)
	}
	idp, err := IssuingDistributionPoint(req.DistributionPoint)
	if err != nil {
		return nil, err
	}
	entries := make([]x509.RevocationListEntry, len(req.Entries))
	for i, e := range req.Entries {
		if e.Serial == nil || e.Serial.Sign() <= 0 {
			return nil, fmt.Errorf("ca: CRL entry %d has no positive serial", i)
		}
		if !validReason(e.Reason) {
			return nil, fmt.Errorf("ca: CRL entry %s: reason %d is not an RFC 5280 CRLReason", e.Serial.Text(16), e.Reason)
		}
		entries[i] = x509.RevocationListEntry{SerialNumber: e.Serial, RevocationTime: e.RevokedAt.UTC(), ReasonCode: e.Reason}
	}
	tmpl := &x509.RevocationList{
		Number:                    req.Number,
		ThisUpdate:                req.ThisUpdate.UTC(),
		NextUpdate:                req.NextUpdate.UTC(),
		RevokedCertificateEntries: entries,
	}
	if idp != nil {
		tmpl.ExtraExtensions = []pkix.Extension{*idp}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: sign CRL: %w", err)
	}
	// x509 takes the authority key identifier from the issuer's subject
	// key identifier, and refuses an issuer without cRLSign.
	der, err := x509.CreateRevocationList(cfg.rand(), tmpl, issuer, key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign CRL: %w", err)
	}
	return der, nil
}

// validReason: the CRLReason values RFC 5280 §5.3.1 defines (7 is
// unused), removeFromCRL (8) aside, which only delta CRLs carry.
func validReason(r int) bool { return r >= 0 && r <= 10 && r != 7 && r != 8 }

// distributionPointName is RFC 5280's DistributionPointName with its
// fullName choice; the implicit [0] of a SEQUENCE encodes the same bytes
// as the explicit tag the CHOICE gets.
type distributionPointName struct {
	FullName []asn1.RawValue `asn1:"optional,tag:0"`
}

// issuingDistributionPoint is RFC 5280 §5.2.5's IssuingDistributionPoint
// with the fields acmed sets; the others keep their DEFAULT FALSE, which
// DER leaves out.
type issuingDistributionPoint struct {
	DistributionPoint     distributionPointName `asn1:"optional,tag:0"`
	OnlyContainsUserCerts bool                  `asn1:"optional,tag:1"`
}

// IssuingDistributionPoint is the critical issuing distribution point
// extension of a CRL of end-entity certificates (onlyContainsUserCerts)
// published at uri (its fullName, a uniformResourceIdentifier
// GeneralName); nil for "".
func IssuingDistributionPoint(uri string) (*pkix.Extension, error) {
	if uri == "" {
		return nil, nil
	}
	for i := 0; i < len(uri); i++ {
		if uri[i] < 0x20 || uri[i] > 0x7e {
			return nil, fmt.Errorf("ca: CRL distribution point %q is not printable ASCII (an IA5String URI)", uri)
		}
	}
	// GeneralName uniformResourceIdentifier is [6] IMPLICIT IA5String.
	name := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 6, Bytes: []byte(uri)}
	val, err := asn1.Marshal(issuingDistributionPoint{
		DistributionPoint:     distributionPointName{FullName: []asn1.RawValue{name}},
		OnlyContainsUserCerts: true,
	})
	if err != nil {
		return nil, fmt.Errorf("ca: encode issuing distribution point: %w", err)
	}
	return &pkix.Extension{Id: oidIssuingDistributionPoint, Critical: true, Value: val}, nil
}

// ParseIssuingDistributionPoint returns the fullName URIs and the
// onlyContainsUserCerts flag of a CRL's issuing distribution point
// extension value, for tests and for checking a stored CRL.
func ParseIssuingDistributionPoint(value []byte) (uris []string, onlyUser bool, err error) {
	var idp issuingDistributionPoint
	rest, err := asn1.Unmarshal(value, &idp)
	if err != nil {
		return nil, false, fmt.Errorf("ca: parse issuing distribution point: %w", err)
	}
	if len(rest) > 0 {
		return nil, false, errors.New("ca: parse issuing distribution point: trailing data")
	}
	for _, n := range idp.DistributionPoint.FullName {
		if n.Class == asn1.ClassContextSpecific && n.Tag == 6 {
			uris = append(uris, string(n.Bytes))
		}
	}
	return uris, idp.OnlyContainsUserCerts, nil
}
