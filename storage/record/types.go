package record

import (
	"encoding/binary"

	"github.com/acmed/acmed/acme"
)

// Each record's append and read functions sit together and list the
// fields in declaration order: that order is the format, so a field added
// to acme's types must be added to both, and to the version (see the
// package documentation).

func appendAccount(b []byte, a *acme.Account) []byte {
	b = append(b, versionRecords)
	b = appendString(b, a.ID)
	b = appendString(b, string(a.Status))
	b = appendStrings(b, a.Contact)
	b = appendBytes(b, a.Key)
	b = appendString(b, a.KeyThumbprint)
	b = appendBool(b, a.TermsAgreed)
	b = appendTime(b, a.CreatedAt)
	return appendString(b, a.EABKID)
}

func readAccount(r *reader) acme.Account {
	var a acme.Account
	a.ID = r.str("ID")
	a.Status = acme.Status(r.str("Status"))
	a.Contact = list(r, "Contact", minString, readString)
	a.Key = r.bytes("Key")
	a.KeyThumbprint = r.str("KeyThumbprint")
	a.TermsAgreed = r.bool("TermsAgreed")
	a.CreatedAt = r.time("CreatedAt")
	if r.version >= versionRecords {
		a.EABKID = r.str("EABKID") // version 2: external account binding
	}
	return a
}

func accountSize(a *acme.Account) int {
	return 1 + 4*lenRoom + len(a.ID) + len(a.Status) + stringsSize(a.Contact) +
		len(a.Key) + len(a.KeyThumbprint) + 1 + timeRoom + lenRoom + len(a.EABKID)
}

func appendOrder(b []byte, o *acme.Order) ([]byte, error) {
	b = append(b, versionRenewal)
	b = appendString(b, o.ID)
	b = appendString(b, o.AccountID)
	b = appendString(b, string(o.Status))
	b = appendIdentifiers(b, o.Identifiers)
	b = appendStrings(b, o.AuthzIDs)
	b = appendTime(b, o.Expires)
	b = appendTime(b, o.NotBefore)
	b = appendTime(b, o.NotAfter)
	b, err := appendProblem(b, o.Error)
	if err != nil {
		return nil, err
	}
	b = appendBytes(b, o.CSR)
	b = appendString(b, o.CertSerial)
	b = appendTime(b, o.CreatedAt)
	b = appendTime(b, o.Queued)
	b = appendString(b, o.Profile)
	b = appendString(b, o.SPIFFEID)
	b = appendString(b, o.Replaces)
	return appendString(b, o.EABKeyName), nil
}

func readOrder(r *reader) acme.Order {
	var o acme.Order
	o.ID = r.str("ID")
	o.AccountID = r.str("AccountID")
	o.Status = acme.Status(r.str("Status"))
	o.Identifiers = list(r, "Identifiers", minIdentifier, readIdentifier)
	o.AuthzIDs = list(r, "AuthzIDs", minString, readString)
	o.Expires = r.time("Expires")
	o.NotBefore = r.time("NotBefore")
	o.NotAfter = r.time("NotAfter")
	o.Error = r.problem("Error")
	o.CSR = r.bytes("CSR")
	o.CertSerial = r.str("CertSerial")
	o.CreatedAt = r.time("CreatedAt")
	o.Queued = r.time("Queued")
	if r.version >= versionProfiles {
		o.Profile = r.str("Profile")
		o.SPIFFEID = r.str("SPIFFEID")
	}
	if r.version >= versionRenewal {
		o.Replaces = r.str("Replaces")
		o.EABKeyName = r.str("EABKeyName")
	}
	return o
}

func orderSize(o *acme.Order) int {
	return 1 + 5*lenRoom + len(o.ID) + len(o.AccountID) + len(o.Status) +
		identifiersSize(o.Identifiers) + stringsSize(o.AuthzIDs) + 5*timeRoom +
		problemSize(o.Error) + len(o.CSR) + len(o.CertSerial) +
		4*lenRoom + len(o.Profile) + len(o.SPIFFEID) + len(o.Replaces) + len(o.EABKeyName)
}

func appendAuthorization(b []byte, a *acme.Authorization) ([]byte, error) {
	b = append(b, versionRecords)
	b = appendString(b, a.ID)
	b = appendString(b, a.AccountID)
	b = appendIdentifier(b, a.Identifier)
	b = appendBool(b, a.Wildcard)
	b = appendString(b, string(a.Status))
	b = appendTime(b, a.Expires)
	b = appendCount(b, len(a.Challenges))
	for i := range a.Challenges {
		var err error
		if b, err = appendChallenge(b, &a.Challenges[i]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func readAuthorization(r *reader) acme.Authorization {
	var a acme.Authorization
	a.ID = r.str("ID")
	a.AccountID = r.str("AccountID")
	a.Identifier.Type = acme.IdentifierType(r.str("Identifier.Type"))
	a.Identifier.Value = r.str("Identifier.Value")
	a.Wildcard = r.bool("Wildcard")
	a.Status = acme.Status(r.str("Status"))
	a.Expires = r.time("Expires")
	a.Challenges = list(r, "Challenges", minChallenge, readChallenge)
	return a
}

func authorizationSize(a *acme.Authorization) int {
	n := 1 + 6*lenRoom + len(a.ID) + len(a.AccountID) + len(a.Identifier.Type) +
		len(a.Identifier.Value) + 1 + len(a.Status) + timeRoom + lenRoom
	for i := range a.Challenges {
		c := &a.Challenges[i]
		n += 4*lenRoom + len(c.ID) + len(c.Type) + len(c.Token) + len(c.Status) +
			2*timeRoom + problemSize(c.Error) + validationRecordsSize(c.ValidationRecords)
	}
	return n
}

func appendChallenge(b []byte, c *acme.Challenge) ([]byte, error) {
	b = appendString(b, c.ID)
	b = appendString(b, string(c.Type))
	b = appendString(b, c.Token)
	b = appendString(b, string(c.Status))
	b = appendTime(b, c.Validated)
	b = appendTime(b, c.Queued)
	b, err := appendProblem(b, c.Error)
	if err != nil {
		return nil, err
	}
	b = appendCount(b, len(c.ValidationRecords))
	for _, rec := range c.ValidationRecords {
		b = appendString(b, rec.URL)
		b = appendString(b, rec.Hostname)
		b = appendString(b, rec.Port)
		b = appendStrings(b, rec.AddressesResolved)
		b = appendString(b, rec.AddressUsed)
		b = appendCount(b, len(rec.Queries))
		for _, q := range rec.Queries {
			b = appendString(b, q.Name)
			b = appendString(b, q.Type)
			b = appendStrings(b, q.Answers)
		}
	}
	return b, nil
}

func validationRecordsSize(recs []acme.ValidationRecord) int {
	n := lenRoom
	for _, rec := range recs {
		n += 5*lenRoom + len(rec.URL) + len(rec.Hostname) + len(rec.Port) +
			stringsSize(rec.AddressesResolved) + len(rec.AddressUsed)
		for _, q := range rec.Queries {
			n += 2*lenRoom + len(q.Name) + len(q.Type) + stringsSize(q.Answers)
		}
	}
	return n
}

func readValidationRecord(r *reader) acme.ValidationRecord {
	var rec acme.ValidationRecord
	rec.URL = r.str("URL")
	rec.Hostname = r.str("Hostname")
	rec.Port = r.str("Port")
	rec.AddressesResolved = list(r, "AddressesResolved", minString, readString)
	rec.AddressUsed = r.str("AddressUsed")
	rec.Queries = list(r, "Queries", minQuery, readDNSQuery)
	return rec
}

func readDNSQuery(r *reader) acme.DNSQuery {
	var q acme.DNSQuery
	q.Name = r.str("Name")
	q.Type = r.str("Type")
	q.Answers = list(r, "Answers", minString, readString)
	return q
}

func readChallenge(r *reader) acme.Challenge {
	var c acme.Challenge
	c.ID = r.str("ID")
	c.Type = acme.ChallengeType(r.str("Type"))
	c.Token = r.str("Token")
	c.Status = acme.Status(r.str("Status"))
	c.Validated = r.time("Validated")
	c.Queued = r.time("Queued")
	c.Error = r.problem("Error")
	if r.version >= versionRecords {
		c.ValidationRecords = list(r, "ValidationRecords", minValidationRecord, readValidationRecord)
	}
	return c
}

func appendCertificate(b []byte, c *acme.Certificate) []byte {
	b = append(b, certificateVersion(c))
	b = appendString(b, c.Serial)
	b = appendString(b, c.AccountID)
	b = appendString(b, c.OrderID)
	b = appendBytes(b, c.ChainPEM)
	b = appendIdentifiers(b, c.Identifiers)
	b = appendTime(b, c.NotAfter)
	b = appendBool(b, c.Revoked)
	b = appendTime(b, c.RevokedAt)
	b = appendInt(b, c.Reason)
	b = appendString(b, c.Profile)
	b = appendTime(b, c.NotBefore)
	b = appendString(b, c.EABKeyName)
	b = appendString(b, c.Replaces)
	b = appendString(b, c.ReplacedBy)
	b = appendTime(b, c.RenewAfter)
	b = appendTime(b, c.RenewBefore)
	b = appendString(b, c.CampaignID)
	if c.Issuer == "" {
		return b
	}
	return appendString(b, c.Issuer)
}

// certificateVersion is the version a certificate is written in: 4 until
// the CA rotates (no Issuer: its first intermediate's), so that an acmed
// from before rotation, on the same store during a rolling upgrade,
// still reads every certificate; 5 with an Issuer.
func certificateVersion(c *acme.Certificate) byte {
	if c.Issuer == "" {
		return versionRenewal
	}
	return versionIssuer
}

func readCertificate(r *reader) acme.Certificate {
	var c acme.Certificate
	c.Serial = r.str("Serial")
	c.AccountID = r.str("AccountID")
	c.OrderID = r.str("OrderID")
	c.ChainPEM = r.bytes("ChainPEM")
	c.Identifiers = list(r, "Identifiers", minIdentifier, readIdentifier)
	c.NotAfter = r.time("NotAfter")
	c.Revoked = r.bool("Revoked")
	c.RevokedAt = r.time("RevokedAt")
	c.Reason = r.int("Reason")
	if r.version >= versionProfiles {
		c.Profile = r.str("Profile")
		c.NotBefore = r.time("NotBefore")
	}
	if r.version >= versionRenewal {
		c.EABKeyName = r.str("EABKeyName")
		c.Replaces = r.str("Replaces")
		c.ReplacedBy = r.str("ReplacedBy")
		c.RenewAfter = r.time("RenewAfter")
		c.RenewBefore = r.time("RenewBefore")
		c.CampaignID = r.str("CampaignID")
	}
	if r.version >= versionIssuer {
		c.Issuer = r.str("Issuer")
	}
	return c
}

func certificateSize(c *acme.Certificate) int {
	return 1 + 4*lenRoom + len(c.Serial) + len(c.AccountID) + len(c.OrderID) +
		len(c.ChainPEM) + identifiersSize(c.Identifiers) + 3*timeRoom + 1 +
		binary.MaxVarintLen64 + lenRoom + len(c.Profile) + 2*timeRoom +
		5*lenRoom + len(c.EABKeyName) + len(c.Replaces) + len(c.ReplacedBy) + len(c.CampaignID) + len(c.Issuer)
}
