package acme

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// RevocationReason is an RFC 5280 §5.3.1 CRLReason code, as the reason
// field of revokeCert carries it (RFC 8555 §7.6).
type RevocationReason int

// The reasons a subscriber may give for an end-entity certificate.
// cACompromise (2), certificateHold (6), removeFromCRL (8) and
// aACompromise (10) are about CA certificates, suspension or attribute
// authorities, none of which a subscriber's request may state; 7 is
// unused.
const (
	ReasonUnspecified          RevocationReason = 0
	ReasonKeyCompromise        RevocationReason = 1
	ReasonAffiliationChanged   RevocationReason = 3
	ReasonSuperseded           RevocationReason = 4
	ReasonCessationOfOperation RevocationReason = 5
	ReasonPrivilegeWithdrawn   RevocationReason = 9
)

var reasonNames = map[RevocationReason]string{
	ReasonUnspecified:          "unspecified",
	ReasonKeyCompromise:        "keyCompromise",
	ReasonAffiliationChanged:   "affiliationChanged",
	ReasonSuperseded:           "superseded",
	ReasonCessationOfOperation: "cessationOfOperation",
	ReasonPrivilegeWithdrawn:   "privilegeWithdrawn",
}

// SubscriberReasons are the reasons a revokeCert request may give, in
// code order.
func SubscriberReasons() []RevocationReason {
	return []RevocationReason{ReasonUnspecified, ReasonKeyCompromise, ReasonAffiliationChanged,
		ReasonSuperseded, ReasonCessationOfOperation, ReasonPrivilegeWithdrawn}
}

// String is the RFC 5280 name, or the bare code for one a subscriber may
// not give.
func (r RevocationReason) String() string {
	if n, ok := reasonNames[r]; ok {
		return n
	}
	return fmt.Sprintf("reason %d", int(r))
}

// ReasonList names reasons for a problem's detail: "0 (unspecified), 1
// (keyCompromise)".
func ReasonList(rs []RevocationReason) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d (%s)", int(r), r)
	}
	return strings.Join(parts, ", ")
}

// CheckRevocationReason refuses a reason no subscriber may give, with the
// allowed ones in the detail (badRevocationReason).
func CheckRevocationReason(r RevocationReason) *Problem {
	if _, ok := reasonNames[r]; ok {
		return nil
	}
	return BadRevocationReason("reason code %d is not allowed for an end-entity certificate; allowed: %s",
		int(r), ReasonList(SubscriberReasons()))
}

// KeyHash names a public key by the SHA-256 of its DER
// SubjectPublicKeyInfo, in lower-case hex: how keys reported compromised
// are blocked (the same key hashes alike in a CSR, a certificate and a
// JWK).
func KeyHash(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// PublicKeyHash is KeyHash of a parsed public key (an account's JWK).
func PublicKeyHash(pub crypto.PublicKey) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("public key: %w", err)
	}
	return KeyHash(spki), nil
}

// CSRKeyHash is KeyHash of the key in a PKCS #10 request, read without
// parsing (or checking) the rest of it: enough to look the key up in
// the same read as the request's account, before the CSR is checked.
// ok is false for what is not shaped like a CSR.
func CSRKeyHash(der []byte) (hash string, ok bool) {
	in := cryptobyte.String(der)
	var csr, info, spki cryptobyte.String
	if !in.ReadASN1(&csr, cbasn1.SEQUENCE) ||
		!csr.ReadASN1(&info, cbasn1.SEQUENCE) ||
		!info.SkipASN1(cbasn1.INTEGER) || // version
		!info.SkipASN1(cbasn1.SEQUENCE) || // subject
		!info.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return "", false
	}
	return KeyHash(spki), true
}

// KeyBlocked is the badPublicKey a key reported compromised gets, as a
// CSR's key or an account's.
func KeyBlocked() *Problem {
	return BadPublicKey("key is blocked: it was reported compromised")
}
