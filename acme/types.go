// Package acme holds the RFC 8555 domain: resources, statuses, problems, key
// authorizations and the pure status state machine. It does no I/O.
package acme

import "time"

// Status is the status of an ACME resource (RFC 8555 §7.1.6).
type Status string

const (
	StatusPending     Status = "pending"
	StatusReady       Status = "ready"
	StatusProcessing  Status = "processing"
	StatusValid       Status = "valid"
	StatusInvalid     Status = "invalid"
	StatusDeactivated Status = "deactivated"
	StatusExpired     Status = "expired"
	StatusRevoked     Status = "revoked"
)

// IdentifierType names the kind of an identifier (RFC 8555 §9.7.7).
type IdentifierType string

const (
	IdentifierDNS IdentifierType = "dns"
	IdentifierIP  IdentifierType = "ip"
)

// Identifier is what a certificate is issued for.
type Identifier struct {
	Type  IdentifierType `json:"type"`
	Value string         `json:"value"`
}

// ChallengeType names a validation method (RFC 8555 §8).
type ChallengeType string

const (
	ChallengeHTTP01    ChallengeType = "http-01"
	ChallengeDNS01     ChallengeType = "dns-01"
	ChallengeTLSALPN01 ChallengeType = "tls-alpn-01"
)

// Account is an ACME account (RFC 8555 §7.1.2). The key is kept as its JWK
// JSON so the domain needs no key type of its own.
type Account struct {
	ID            string
	Status        Status
	Contact       []string
	Key           []byte // public JWK, JSON
	KeyThumbprint string // RFC 7638, base64url
	TermsAgreed   bool
	CreatedAt     time.Time
	// EABKID is the external account binding key the account was created
	// with (RFC 8555 §7.3.4), "" for none. It binds the account for life:
	// the key's policy applies to all its orders, and revoking the key
	// stops them.
	EABKID string
}

// Order is an ACME order (RFC 8555 §7.1.3). Status holds only what cannot be
// derived: pending until finalization starts, then processing, valid or
// invalid. Use OrderStatus for the status a client sees.
type Order struct {
	ID          string
	AccountID   string
	Status      Status
	Identifiers []Identifier
	AuthzIDs    []string
	Expires     time.Time
	NotBefore   time.Time // requested; zero when the client asked for none
	NotAfter    time.Time
	Error       *Problem
	CSR         []byte // DER, kept from finalize until the certificate is issued
	CertSerial  string
	CreatedAt   time.Time
	// Queued is when the issuance job was last queued, while processing.
	Queued time.Time
	// Profile is the certificate profile the order was created under.
	Profile string
	// SPIFFEID is the URI SAN of a SPIFFE profile's certificate, taken
	// from the account's EAB key at finalize, so that issuance needs no
	// key lookup.
	SPIFFEID string
	// Replaces is the serial of the certificate this order's replaces
	// (RFC 9773 §5), checked at new-order.
	Replaces string
	// EABKeyName is the name of the account's EAB key at finalize, for the
	// certificate's inventory entry.
	EABKeyName string
}

// Authorization is an ACME authorization (RFC 8555 §7.1.4) with its
// challenges; a challenge lives and changes only inside its authorization.
type Authorization struct {
	ID         string
	AccountID  string
	Identifier Identifier // without "*." for wildcards
	Wildcard   bool
	Status     Status
	Expires    time.Time
	Challenges []Challenge
}

// Challenge is one way to prove control of an identifier (RFC 8555 §7.1.5).
type Challenge struct {
	ID        string
	Type      ChallengeType
	Token     string
	Status    Status
	Validated time.Time
	// Queued is when the validation job was last queued, while processing.
	Queued time.Time
	Error  *Problem
	// ValidationRecords is what the last validation checked.
	ValidationRecords []ValidationRecord
}

// Certificate is an issued certificate and its revocation state.
type Certificate struct {
	Serial      string // canonical: SerialHex (NormalizeSerial); older records may hold LegacySerial
	AccountID   string
	OrderID     string
	ChainPEM    []byte // leaf first, then the issuers
	Identifiers []Identifier
	NotAfter    time.Time
	Revoked     bool
	RevokedAt   time.Time
	Reason      int
	Profile     string
	NotBefore   time.Time
	// EABKeyName is the name of the issuing account's EAB key, if any.
	EABKeyName string
	// Replaces is the serial this certificate replaced: the order's
	// replaces, or else the account's latest certificate for the same
	// identifiers, as the store found it at issuance.
	Replaces string
	// ReplacedBy is the serial of the certificate that replaced this one;
	// the store sets it when it records that certificate.
	ReplacedBy string
	// RenewAfter and RenewBefore are a campaign's renewal window (zero:
	// the default, RenewalWindow); CampaignID the campaign's.
	RenewAfter  time.Time
	RenewBefore time.Time
	CampaignID  string
	// Issuer names the intermediate that signed it (ca.CRLName); ""
	// for the intermediate in --data, the store's first (and only one
	// before a rotation): such records keep the format an acmed from
	// before rotation reads.
	Issuer string
}

// Challenge returns the challenge with the given ID, or nil.
func (a *Authorization) Challenge(id string) *Challenge {
	for i := range a.Challenges {
		if a.Challenges[i].ID == id {
			return &a.Challenges[i]
		}
	}
	return nil
}
