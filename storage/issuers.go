package storage

import (
	"context"
	"slices"
	"time"
)

// Issuer states: the active issuer signs new certificates; a retired one
// signs only the CRLs and OCSP answers of the certificates it issued.
const (
	IssuerActive  = "active"
	IssuerRetired = "retired"
)

// Issuer is one intermediate a CA has signed with (issue 17's rotation).
// The private key is never stored in clear: WrappedKey is sealed under a
// key every replica derives itself, KeyLabel names a key in the replicas'
// PKCS#11 tokens, and the --data intermediate (the store's first issuer)
// needs neither.
type Issuer struct {
	// Name is the issuer's CRL name (ca.CRLName), unique in the set.
	Name    string `json:"name"`
	CertPEM []byte `json:"cert_pem"`
	State   string `json:"state"`
	// Original marks the intermediate in --data, which every replica
	// loads from its files, and whose certificates' records may lack an
	// Issuer.
	Original   bool      `json:"original,omitempty"`
	Created    time.Time `json:"created"`
	Activated  time.Time `json:"activated,omitzero"`
	Retired    time.Time `json:"retired,omitzero"`
	KeyLabel   string    `json:"key_label,omitempty"`
	WrappedKey []byte    `json:"wrapped_key,omitempty"`
	// By is who made it (an admin caller), for `acmed admin ca list`.
	By string `json:"by,omitempty"`
}

// IssuerSet is every issuer of the store's CA, oldest first. Revision
// grows with every change, so that a replica polling it can tell a
// change with one comparison.
type IssuerSet struct {
	Revision uint64   `json:"revision"`
	Issuers  []Issuer `json:"issuers"`
}

// Active is the active issuer, nil when none is.
func (s *IssuerSet) Active() *Issuer {
	for i := range s.Issuers {
		if s.Issuers[i].State == IssuerActive {
			return &s.Issuers[i]
		}
	}
	return nil
}

// Clone is a deep copy of s.
func (s *IssuerSet) Clone() *IssuerSet {
	c := &IssuerSet{Revision: s.Revision, Issuers: slices.Clone(s.Issuers)}
	for i := range c.Issuers {
		c.Issuers[i].CertPEM = slices.Clone(c.Issuers[i].CertPEM)
		c.Issuers[i].WrappedKey = slices.Clone(c.Issuers[i].WrappedKey)
	}
	return c
}

// Issuers keeps the set of issuers every replica signs with. It is small
// (a few issuers of a few KB) and read whole: replicas poll it for a
// change of the active issuer.
type Issuers interface {
	// Issuers returns the set; an empty one with Revision 0 when none
	// was ever stored.
	Issuers(ctx context.Context) (*IssuerSet, error)
	// UpdateIssuers calls fn on a copy of the set and stores the result
	// with Revision one higher, compare-and-set like the other updates;
	// an error from fn stores nothing and is returned unchanged.
	UpdateIssuers(ctx context.Context, fn func(*IssuerSet) error) (*IssuerSet, error)
}
