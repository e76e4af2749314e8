package api

import (
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// Wire types are the JSON objects of RFC 8555 §7.1, kept apart from the
// domain types so storage and protocol can change independently.

type wireAccount struct {
	Status      acme.Status `json:"status"`
	Contact     []string    `json:"contact,omitempty"`
	TermsAgreed bool        `json:"termsOfServiceAgreed,omitempty"`
	Orders      string      `json:"orders"`
}

type wireOrder struct {
	Status         acme.Status       `json:"status"`
	Expires        string            `json:"expires,omitempty"`
	Identifiers    []acme.Identifier `json:"identifiers"`
	NotBefore      string            `json:"notBefore,omitempty"`
	NotAfter       string            `json:"notAfter,omitempty"`
	Error          *acme.Problem     `json:"error,omitempty"`
	Authorizations []string          `json:"authorizations"`
	Finalize       string            `json:"finalize"`
	Certificate    string            `json:"certificate,omitempty"`
	Profile        string            `json:"profile,omitempty"`
	// Replaces is the certID of the certificate the order replaces
	// (RFC 9773 §5).
	Replaces string `json:"replaces,omitempty"`
}

type wireAuthz struct {
	Identifier acme.Identifier `json:"identifier"`
	Status     acme.Status     `json:"status"`
	Expires    string          `json:"expires,omitempty"`
	Challenges []wireChallenge `json:"challenges"`
	Wildcard   bool            `json:"wildcard,omitempty"`
}

type wireChallenge struct {
	Type             acme.ChallengeType `json:"type"`
	URL              string             `json:"url"`
	Status           acme.Status        `json:"status"`
	Token            string             `json:"token"`
	Validated        string             `json:"validated,omitempty"`
	Error            *acme.Problem      `json:"error,omitempty"`
	ValidationRecord []wireRecord       `json:"validationRecord,omitempty"`
}

// wireRecord is one step of a challenge's validation, in the shape Let's
// Encrypt shows (Boulder's core.ValidationRecord: port as a string), plus
// dnsQueries: the DNS questions asked, with their answers.
type wireRecord struct {
	URL               string         `json:"url,omitempty"`
	Hostname          string         `json:"hostname,omitempty"`
	Port              string         `json:"port,omitempty"`
	AddressesResolved []string       `json:"addressesResolved,omitempty"`
	AddressUsed       string         `json:"addressUsed,omitempty"`
	DNSQueries        []wireDNSQuery `json:"dnsQueries,omitempty"`
}

type wireDNSQuery struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Answers []string `json:"answers"`
}

func timestamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func (s *Server) accountURL(id string) string { return s.baseURL + accountPath + id }
func (s *Server) orderURL(id string) string   { return s.baseURL + orderPath + id }
func (s *Server) authzURL(id string) string   { return s.baseURL + authzPath + id }

// certURL shows a serial in its canonical form, whichever it was stored
// in; the certificate is found by either.
func (s *Server) certURL(serial string) string {
	if canonical, ok := acme.NormalizeSerial(serial); ok {
		serial = canonical
	}
	return s.baseURL + certPath + serial
}
func (s *Server) challengeURL(authzID, id string) string {
	return s.baseURL + challengePath + authzID + "/" + id
}

func (s *Server) wireAccount(a *acme.Account) wireAccount {
	return wireAccount{Status: a.Status, Contact: a.Contact, TermsAgreed: a.TermsAgreed, Orders: s.accountURL(a.ID) + "/orders"}
}

func (s *Server) wireOrder(o *authority.Order) wireOrder {
	w := wireOrder{
		Status: o.Status, Expires: timestamp(o.Expires), Identifiers: o.Identifiers,
		NotBefore: timestamp(o.NotBefore), NotAfter: timestamp(o.NotAfter), Error: o.Error,
		Finalize: s.orderURL(o.ID) + "/finalize", Authorizations: make([]string, len(o.AuthzIDs)),
		Profile: o.Profile,
	}
	for i, id := range o.AuthzIDs {
		w.Authorizations[i] = s.authzURL(id)
	}
	if o.Status == acme.StatusValid {
		w.Certificate = s.certURL(o.CertSerial)
	}
	if o.Replaces != "" {
		w.Replaces = s.auth.CertID(o.Replaces)
	}
	return w
}

func (s *Server) wireAuthz(a *acme.Authorization) wireAuthz {
	w := wireAuthz{Identifier: a.Identifier, Status: a.Status, Expires: timestamp(a.Expires), Wildcard: a.Wildcard,
		Challenges: make([]wireChallenge, len(a.Challenges))}
	for i := range a.Challenges {
		w.Challenges[i] = s.wireChallenge(a, &a.Challenges[i])
	}
	return w
}

func (s *Server) wireChallenge(a *acme.Authorization, c *acme.Challenge) wireChallenge {
	return wireChallenge{Type: c.Type, URL: s.challengeURL(a.ID, c.ID), Status: c.Status, Token: c.Token,
		Validated: timestamp(c.Validated), Error: c.Error, ValidationRecord: wireRecords(c.ValidationRecords)}
}

func wireRecords(recs []acme.ValidationRecord) []wireRecord {
	if len(recs) == 0 {
		return nil
	}
	out := make([]wireRecord, len(recs))
	for i, r := range recs {
		out[i] = wireRecord{URL: r.URL, Hostname: r.Hostname, Port: r.Port, AddressesResolved: r.AddressesResolved, AddressUsed: r.AddressUsed}
		for _, q := range r.Queries {
			answers := q.Answers
			if answers == nil {
				answers = []string{} // a query that found nothing shows "answers": []
			}
			out[i].DNSQueries = append(out[i].DNSQueries, wireDNSQuery{Name: q.Name, Type: q.Type, Answers: answers})
		}
	}
	return out
}
