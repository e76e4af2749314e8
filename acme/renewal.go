package acme

import (
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"time"
)

// Serials are shown and stored in one form: lower-case hex of the
// number's big-endian octets, so always an even number of digits, which is
// what `openssl x509 -serial` prints once case is ignored (openssl prints
// upper case). NormalizeSerial accepts any case, with or without leading
// zeros and colons, and returns that form.
func NormalizeSerial(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	s = strings.TrimPrefix(s, "0x")
	if s == "" || len(s) > 64 {
		return "", false
	}
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return "", false
	}
	return SerialHex(n), true
}

// SerialHex is the canonical form of a certificate's serial number.
func SerialHex(n *big.Int) string { return hex.EncodeToString(n.Bytes()) }

// LegacySerial is how acmed before the canonical form keyed a serial: hex
// without leading zeros. Lookups of older certificates fall back to it.
func LegacySerial(canonical string) string {
	s := strings.TrimLeft(canonical, "0")
	if s == "" {
		return "0"
	}
	return s
}

// CertStatus is a certificate's status in the inventory.
type CertStatus string

const (
	CertValid   CertStatus = "valid"
	CertRevoked CertStatus = "revoked"
	CertExpired CertStatus = "expired"
)

// Status is c's status at now: revoked wins over expired.
func (c *Certificate) Status(now time.Time) CertStatus {
	switch {
	case c.Revoked:
		return CertRevoked
	case !now.Before(c.NotAfter):
		return CertExpired
	}
	return CertValid
}

// RenewalWindow is when c should be renewed (RFC 9773 suggestedWindow): a
// campaign's window when one moved it, else inside the last third of its
// lifetime, from a third before notAfter to a sixth before it, so that a
// client renewing at the end of the window still has time to retry.
func (c *Certificate) RenewalWindow() (start, end time.Time) {
	if !c.RenewAfter.IsZero() {
		return c.RenewAfter, c.RenewBefore
	}
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Add(-life / 3), c.NotAfter.Add(-life / 6)
}

// CertID is the ARI certificate identifier (RFC 9773 §4.1): base64url of
// the authority key identifier's keyIdentifier, ".", base64url of the
// serial's DER content octets.
func CertID(aki []byte, serialHex string) string {
	serial, _ := hex.DecodeString(serialHex)
	if len(serial) > 0 && serial[0]&0x80 != 0 {
		// DER keeps a positive INTEGER positive with a zero octet.
		serial = append([]byte{0}, serial...)
	}
	return base64.RawURLEncoding.EncodeToString(aki) + "." + base64.RawURLEncoding.EncodeToString(serial)
}

// ParseCertID splits an ARI certificate identifier into the authority key
// identifier and the canonical serial; a malformed one is malformed.
func ParseCertID(id string) (aki []byte, serial string, p *Problem) {
	a, s, ok := strings.Cut(id, ".")
	if !ok || a == "" || s == "" || strings.Contains(s, ".") {
		return nil, "", Malformed("certID %q: want base64url(keyIdentifier) \".\" base64url(serial)", id)
	}
	aki, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil {
		return nil, "", Malformed("certID %q: authority key identifier is not base64url: %v", id, err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) == 0 || len(raw) > 20 || raw[0]&0x80 != 0 {
		return nil, "", Malformed("certID %q: serial is not the base64url of a positive DER INTEGER of at most 20 octets", id)
	}
	serial, ok = NormalizeSerial(hex.EncodeToString(raw))
	if !ok {
		return nil, "", Malformed("certID %q: serial is zero", id)
	}
	return aki, serial, nil
}

// Campaign is an operator-driven early renewal: every certificate it
// matched had its renewal window moved to [WindowStart, WindowEnd].
type Campaign struct {
	ID             string
	CreatedAt      time.Time
	CreatedBy      string // the admin caller
	Filter         string // the filter as the operator gave it, for display
	ExplanationURL string
	WindowStart    time.Time
	WindowEnd      time.Time
	Matched        int
}

// Alert is an expiry event about one certificate, delivered once per
// certificate and event to each webhook.
type Alert struct {
	Event       string // AlertNotRenewed or AlertCampaignPending
	Serial      string
	Identifiers []Identifier
	Account     string
	NotAfter    time.Time
	CampaignID  string // for AlertCampaignPending
	DetectedAt  time.Time
}

const (
	AlertNotRenewed      = "certificate.not_renewed"
	AlertCampaignPending = "certificate.campaign_pending"
)
