package profile

import (
	"crypto/x509"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/acmed/acmed/acme"
)

// Names of the built-in profiles.
const (
	MTLS       = "mtls"
	Server     = "server"
	ShortLived = "shortlived"
	SPIFFE     = "spiffe"
)

const (
	// builtinBackdate is acmed's backdate before profiles: a minute absorbs
	// the clock skew of hosts kept by NTP.
	builtinBackdate = time.Minute
	// shortLived is the shortlived and spiffe profiles' lifetime, backdate
	// included: a day keeps a leaked key useful for hours, not weeks, and
	// is long enough for clients that renew at two thirds of a lifetime to
	// ride out an outage of several hours.
	shortLived = 24 * time.Hour
)

// Builtins are the profiles that exist with no configuration. certValidity
// is --cert-validity, which keeps its meaning from before profiles: the
// time from issuance to notAfter, so mtls and server certificates live
// that long plus the backdate.
func Builtins(certValidity time.Duration) []Profile {
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	base := Profile{
		DefaultValidity: certValidity + builtinBackdate,
		MaxValidity:     certValidity + builtinBackdate,
		Backdate:        builtinBackdate,
		ExtKeyUsage:     both,
		KeyTypes:        []KeyType{ECDSAP256, ECDSAP384, RSA, Ed25519},
		RSAMinBits:      2048,
		RSAMaxBits:      4096,
		MaxIdentifiers:  100,
		IdentifierTypes: []acme.IdentifierType{acme.IdentifierDNS, acme.IdentifierIP},
		CommonName:      CNKeep,
	}
	mtls, server, short, spiffe := base, base, base, base
	mtls.Name = MTLS
	mtls.Description = fmt.Sprintf("TLS server and client (mTLS) certificate, valid %s", certValidity)
	server.Name = Server
	server.Description = fmt.Sprintf("TLS server certificate, valid %s", certValidity)
	server.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	short.Name = ShortLived
	short.Description = "short-lived TLS server and client certificate, valid 24h"
	short.DefaultValidity, short.MaxValidity = shortLived, shortLived
	spiffe.Name = SPIFFE
	spiffe.Description = "SPIFFE X509-SVID: the account's SPIFFE ID and validated DNS names, valid 24h"
	spiffe.DefaultValidity, spiffe.MaxValidity = shortLived, shortLived
	spiffe.KeyUsage = x509.KeyUsageDigitalSignature
	spiffe.SPIFFE = true
	return []Profile{mtls, server, short, spiffe}
}

// Set is the profiles one server offers, and its default.
type Set struct {
	byName    map[string]*Profile
	def       string
	directory map[string]string
}

// NewSet returns the built-ins with configured replacing any of the same
// name, def the default ("" for mtls). Every profile is checked.
func NewSet(certValidity time.Duration, configured []Profile, def string) (*Set, error) {
	s := &Set{byName: map[string]*Profile{}, directory: map[string]string{}}
	for _, p := range append(Builtins(certValidity), configured...) {
		if err := p.Check(); err != nil {
			return nil, err
		}
		s.byName[p.Name] = &p
		s.directory[p.Name] = p.Description
	}
	if def == "" {
		def = MTLS
	}
	if s.byName[def] == nil {
		return nil, fmt.Errorf("--default-profile %q: no such profile (have %s)", def, s.names())
	}
	if s.byName[def].SPIFFE {
		// Clients that know no profiles would get invalidProfile unless
		// their key had a SPIFFE ID.
		return nil, fmt.Errorf("--default-profile %q: a SPIFFE profile cannot be the default", def)
	}
	s.def = def
	return s, nil
}

func (s *Set) names() string {
	names := make([]string, 0, len(s.byName))
	for n := range s.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return fmt.Sprint(names)
}

// Directory is meta.profiles: each name with its description.
func (s *Set) Directory() map[string]string { return s.directory }

// Default is the profile of an order that names none.
func (s *Set) Default() string { return s.def }

// Get returns the named profile, or nil.
func (s *Set) Get(name string) *Profile { return s.byName[name] }

// Choose picks the profile of a new order that asked for name ("" for
// none) from an account whose EAB key allows only allowed (empty: any)
// and carries spiffeID (maybe ""). An order that names none gets the
// server's default, or the key's first profile when the key does not allow
// the default. What the account may not use is invalidProfile.
func (s *Set) Choose(name string, allowed []string, spiffeID string) (*Profile, *acme.Problem) {
	if name == "" {
		name = s.def
		if len(allowed) > 0 && !slices.Contains(allowed, name) {
			name = allowed[0]
		}
	}
	p := s.byName[name]
	switch {
	case p == nil:
		return nil, acme.InvalidProfile("profile %q is not offered; the directory's meta.profiles lists those that are", name)
	case len(allowed) > 0 && !slices.Contains(allowed, name):
		return nil, acme.InvalidProfile("profile %q is not allowed for this account; its external account binding key allows %v", name, allowed)
	case p.SPIFFE && spiffeID == "":
		return nil, acme.InvalidProfile("profile %q issues SPIFFE IDs, and this account's external account binding key carries none", name)
	}
	return p, nil
}
