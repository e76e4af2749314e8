package record_test

import (
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

// Times as decoding returns them: UTC, here with nanoseconds so a format
// that dropped them would show.
var (
	t0 = time.Date(2026, 3, 1, 12, 30, 45, 123456789, time.UTC)
	t1 = t0.Add(7*24*time.Hour + 1)
)

func fullAccount() *acme.Account {
	return &acme.Account{
		ID:            "acct0123456789ab",
		Status:        acme.StatusValid,
		Contact:       []string{"mailto:ops@example.com", "mailto:pki@example.com"},
		Key:           []byte(`{"crv":"P-256","kty":"EC","x":"` + strings.Repeat("x", 43) + `","y":"` + strings.Repeat("y", 43) + `"}`),
		KeyThumbprint: strings.Repeat("k", 43),
		TermsAgreed:   true,
		CreatedAt:     t0,
		EABKID:        "kid0123456789",
	}
}

func fullOrder() *acme.Order {
	return &acme.Order{
		ID:        "acct0123456789ab.order0123456789",
		AccountID: "acct0123456789ab",
		Status:    acme.StatusInvalid,
		Identifiers: []acme.Identifier{
			{Type: acme.IdentifierDNS, Value: "host.example.com"},
			{Type: acme.IdentifierDNS, Value: "*.apps.example.com"},
			{Type: acme.IdentifierIP, Value: "2001:db8::1"},
			{Type: acme.IdentifierIP, Value: "192.0.2.7"},
		},
		AuthzIDs:   []string{"acct0123456789ab.authz1", "acct0123456789ab.authz2", "acct0123456789ab.authz3", "acct0123456789ab.authz4"},
		Expires:    t1,
		NotBefore:  t0,
		NotAfter:   t1.Add(90 * 24 * time.Hour),
		Error:      compoundProblem(),
		CSR:        []byte{0x30, 0x82, 0x01, 0x00, 0xff, 0x00},
		CertSerial: "7f0123456789abcdef",
		CreatedAt:  t0,
		Queued:     t0.Add(time.Second + 5),
		Profile:    "spiffe",
		SPIFFEID:   "spiffe://example.com/ns/payments/sa/api",
		Replaces:   "7f00aa",
		EABKeyName: "payments",
	}
}

func compoundProblem() *acme.Problem {
	return &acme.Problem{
		Type:   "urn:ietf:params:acme:error:compound",
		Detail: "some identifiers failed <&>",
		Status: 403,
		Subproblems: []*acme.Problem{
			acme.Unauthorized("no TXT record").For(acme.Identifier{Type: acme.IdentifierDNS, Value: "apps.example.com"}),
			{Type: "urn:ietf:params:acme:error:badSignatureAlgorithm", Algorithms: []string{"ES256", "RS256"}},
		},
	}
}

// threeChallengeAuthz is an authorization as a new order makes it.
func threeChallengeAuthz() *acme.Authorization {
	a := &acme.Authorization{
		ID:         "acct0123456789ab.authz0123456789",
		AccountID:  "acct0123456789ab",
		Identifier: acme.Identifier{Type: acme.IdentifierDNS, Value: "host.example.com"},
		Status:     acme.StatusPending,
		Expires:    t1,
	}
	for _, typ := range []acme.ChallengeType{acme.ChallengeHTTP01, acme.ChallengeDNS01, acme.ChallengeTLSALPN01} {
		a.Challenges = append(a.Challenges, acme.Challenge{
			ID: "chall" + string(typ), Type: typ, Token: strings.Repeat("t", 43), Status: acme.StatusPending,
		})
	}
	a.Challenges[0].ValidationRecords = []acme.ValidationRecord{
		{URL: "http://host.example.com/.well-known/acme-challenge/" + strings.Repeat("t", 43), Hostname: "host.example.com",
			Port: "80", AddressesResolved: []string{"192.0.2.1", "2001:db8::1"}, AddressUsed: "2001:db8::1",
			Queries: []acme.DNSQuery{{Name: "host.example.com", Type: "CNAME", Answers: []string{"web.example.net"}},
				{Name: "web.example.net", Type: "AAAA", Answers: []string{"2001:db8::1"}}}},
		{URL: "https://host.example.com/moved", Hostname: "host.example.com", Port: "443"},
	}
	return a
}

func failedWildcardAuthz() *acme.Authorization {
	a := threeChallengeAuthz()
	a.Identifier.Value = "apps.example.com"
	a.Wildcard = true
	a.Status = acme.StatusInvalid
	a.Challenges = a.Challenges[1:2]
	a.Challenges[0].Status = acme.StatusInvalid
	a.Challenges[0].Validated = t0
	a.Challenges[0].Queued = t0.Add(-time.Nanosecond)
	a.Challenges[0].Error = compoundProblem()
	return a
}

func ipAuthz() *acme.Authorization {
	return &acme.Authorization{
		ID:         "acct0123456789ab.authzip",
		AccountID:  "acct0123456789ab",
		Identifier: acme.Identifier{Type: acme.IdentifierIP, Value: "2001:db8::1"},
		Status:     acme.StatusValid,
		Expires:    t1,
		Challenges: []acme.Challenge{{
			ID: "challip", Type: acme.ChallengeHTTP01, Token: "tok", Status: acme.StatusValid, Validated: t0,
		}},
	}
}

func fullCertificate() *acme.Certificate {
	return &acme.Certificate{
		Serial:    "7f0123456789abcdef",
		AccountID: "acct0123456789ab",
		OrderID:   "acct0123456789ab.order0123456789",
		ChainPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB" + strings.Repeat("A", 600) + "\n-----END CERTIFICATE-----\n" +
			"-----BEGIN CERTIFICATE-----\nMIIB" + strings.Repeat("B", 600) + "\n-----END CERTIFICATE-----\n"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "host.example.com"}, {Type: acme.IdentifierIP, Value: "192.0.2.7"}},
		NotAfter:    t1,
		Revoked:     true,
		RevokedAt:   t0.Add(time.Hour),
		Reason:      4,
		Profile:     "shortlived",
		NotBefore:   t0,
		EABKeyName:  "payments",
		Replaces:    "7f00aa",
		ReplacedBy:  "7f00bb",
		RenewAfter:  t1.Add(-time.Hour),
		RenewBefore: t1.Add(-time.Minute),
		CampaignID:  "camp1",
		Issuer:      "0123456789abcdef",
	}
}

// records is every fixture, as Marshal and Unmarshal take them.
func records() []struct {
	name string
	v    any
} {
	return []struct {
		name string
		v    any
	}{
		{"zero account", &acme.Account{}},
		{"full account", fullAccount()},
		{"zero order", &acme.Order{}},
		{"full order", fullOrder()},
		{"pending order", &acme.Order{ID: "o", AccountID: "a", Status: acme.StatusPending,
			Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "x.example"}}, AuthzIDs: []string{"z"}, Expires: t1, CreatedAt: t0}},
		{"zero authorization", &acme.Authorization{}},
		{"authorization, three challenges", threeChallengeAuthz()},
		{"failed wildcard authorization", failedWildcardAuthz()},
		{"IP authorization", ipAuthz()},
		{"zero certificate", &acme.Certificate{}},
		{"revoked certificate", fullCertificate()},
		{"negative reason, time before 1970", &acme.Certificate{Serial: "1", Reason: -1,
			NotAfter: time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC)}},
	}
}

// fresh returns a new zero value of v's type, to decode into.
func fresh(v any) any {
	switch v.(type) {
	case *acme.Account:
		return new(acme.Account)
	case *acme.Order:
		return new(acme.Order)
	case *acme.Authorization:
		return new(acme.Authorization)
	case *acme.Certificate:
		return new(acme.Certificate)
	}
	panic("fresh: not a record type")
}
