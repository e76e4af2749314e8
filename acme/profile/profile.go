// Package profile holds certificate profiles (draft-ietf-acme-profiles):
// named shapes of certificate a client picks per order. A profile decides
// the validity, the key usages, which CSR keys and identifiers it takes,
// what becomes of the common name, and whether the account's SPIFFE ID
// goes in as a URI SAN. It is pure policy: no I/O.
package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

// KeyType names a kind of CSR key a profile accepts.
type KeyType string

const (
	ECDSAP256 KeyType = "ecdsa-p256"
	ECDSAP384 KeyType = "ecdsa-p384"
	RSA       KeyType = "rsa" // of RSAMinBits to RSAMaxBits
	Ed25519   KeyType = "ed25519"
)

// CommonName is what a profile does with the CSR's subject common name.
type CommonName string

const (
	// CNKeep keeps the CSR's CN when it is one of the identifiers (else
	// drops it): acmed's behaviour before profiles.
	CNKeep CommonName = "keep"
	// CNDrop never puts a CN in: verifiers read only the SANs.
	CNDrop CommonName = "drop"
	// CNFirst uses the CSR's CN when it is one of the identifiers, else
	// the first identifier, for relying parties that still read the CN.
	CNFirst CommonName = "first"
)

// Profile is one certificate profile. Validities are lifetimes: from
// notBefore to notAfter, the backdate included.
type Profile struct {
	Name        string
	Description string
	// DefaultValidity is the lifetime of a certificate whose order asked
	// for no notAfter; MaxValidity the longest an order may ask for.
	DefaultValidity time.Duration
	MaxValidity     time.Duration
	// Backdate is how far notBefore precedes issuance when the order asked
	// for none, so relying parties with a slow clock accept it at once.
	Backdate time.Duration
	// ExtKeyUsage goes into the certificate as is.
	ExtKeyUsage []x509.ExtKeyUsage
	// KeyUsage is the usages asked for, which the CA filters by key type
	// (ca.Request); 0 lets the CA choose by key type.
	KeyUsage   x509.KeyUsage
	KeyTypes   []KeyType
	RSAMinBits int
	RSAMaxBits int
	// MaxIdentifiers bounds one order's identifiers.
	MaxIdentifiers  int
	IdentifierTypes []acme.IdentifierType
	CommonName      CommonName
	// SPIFFE makes the certificate an X509-SVID (SPIFFE X509-SVID §4):
	// the account's EAB key's SPIFFE ID as the one URI SAN. Only accounts
	// whose key carries a SPIFFE ID may use such a profile.
	SPIFFE bool
}

// limits of what a configured profile may say; beyond them the setting is
// a mistake, not a policy.
const (
	minValidity      = time.Minute
	maxBackdate      = 24 * time.Hour
	minRSABits       = 2048
	maxRSABits       = 8192
	maxMaxIdentifier = 1000
)

// Check reports the first setting of p that cannot work, naming it as the
// config file does.
func (p *Profile) Check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("profile %q: "+format, append([]any{p.Name}, args...)...)
	}
	switch {
	case !validName(p.Name):
		return fmt.Errorf("profile name %q: use letters, digits, '-', '_' and '.'", p.Name)
	case p.DefaultValidity < minValidity:
		return bad("default_validity %s: must be at least %s", p.DefaultValidity, minValidity)
	case p.MaxValidity < p.DefaultValidity:
		return bad("max_validity %s: must be at least default_validity %s", p.MaxValidity, p.DefaultValidity)
	case p.Backdate < 0 || p.Backdate > maxBackdate:
		return bad("backdate %s: must be from 0 to %s", p.Backdate, maxBackdate)
	case p.Backdate >= p.DefaultValidity:
		return bad("backdate %s: must be shorter than default_validity %s, or certificates would be born expired", p.Backdate, p.DefaultValidity)
	case len(p.ExtKeyUsage) == 0:
		return bad("ext_key_usages: name at least one (serverAuth, clientAuth)")
	case p.KeyUsage&^(x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment|x509.KeyUsageKeyAgreement) != 0:
		return bad("key_usages: only digitalSignature, keyEncipherment and keyAgreement fit a leaf certificate")
	case p.KeyUsage != 0 && p.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return bad("key_usages: must include digitalSignature (TLS 1.3 signs with every key)")
	case len(p.KeyTypes) == 0:
		return bad("key_types: name at least one (ecdsa-p256, ecdsa-p384, rsa, ed25519)")
	case slices.Contains(p.KeyTypes, RSA) && (p.RSAMinBits < minRSABits || p.RSAMaxBits > maxRSABits || p.RSAMinBits > p.RSAMaxBits):
		return bad("rsa_min_bits %d, rsa_max_bits %d: want %d <= min <= max <= %d", p.RSAMinBits, p.RSAMaxBits, minRSABits, maxRSABits)
	case p.MaxIdentifiers < 1 || p.MaxIdentifiers > maxMaxIdentifier:
		return bad("max_identifiers %d: must be from 1 to %d", p.MaxIdentifiers, maxMaxIdentifier)
	case len(p.IdentifierTypes) == 0:
		return bad("identifier_types: name at least one (dns, ip)")
	case p.SPIFFE && !slices.Contains(p.IdentifierTypes, acme.IdentifierDNS):
		return bad("spiffe: an X509-SVID profile must allow dns identifiers")
	}
	for _, k := range p.KeyTypes {
		if !slices.Contains([]KeyType{ECDSAP256, ECDSAP384, RSA, Ed25519}, k) {
			return bad("key_types: %q is not one of ecdsa-p256, ecdsa-p384, rsa, ed25519", k)
		}
	}
	for _, t := range p.IdentifierTypes {
		if t != acme.IdentifierDNS && t != acme.IdentifierIP {
			return bad("identifier_types: %q is not one of dns, ip", t)
		}
	}
	switch p.CommonName {
	case CNKeep, CNDrop, CNFirst:
	default:
		return bad("common_name %q: want keep, drop or first", p.CommonName)
	}
	if p.SPIFFE {
		// X509-SVID §4.3: a leaf SVID must be able to sign.
		for _, u := range p.ExtKeyUsage {
			if u != x509.ExtKeyUsageServerAuth && u != x509.ExtKeyUsageClientAuth {
				return bad("spiffe: an X509-SVID may carry only serverAuth and clientAuth")
			}
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// CheckIdentifiers applies the profile's identifier count and types to a
// new order.
func (p *Profile) CheckIdentifiers(ids []acme.Identifier) *acme.Problem {
	if len(ids) > p.MaxIdentifiers {
		return acme.RejectedIdentifier("order has %d identifiers; profile %q allows at most %d", len(ids), p.Name, p.MaxIdentifiers)
	}
	for _, id := range ids {
		if !slices.Contains(p.IdentifierTypes, id.Type) {
			return acme.RejectedIdentifier("profile %q does not issue for %s identifiers", p.Name, id.Type).For(id)
		}
	}
	return nil
}

// CheckKey applies the profile's key types and sizes to a CSR's key: a
// key it does not take is badPublicKey (RFC 8555 §7.4), naming what it
// takes.
func (p *Profile) CheckKey(pub crypto.PublicKey) *acme.Problem {
	var kt KeyType
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if slices.Contains(p.KeyTypes, RSA) {
			if n := k.N.BitLen(); n < p.RSAMinBits || n > p.RSAMaxBits {
				return acme.BadPublicKey("RSA key of %d bits: profile %q takes %d to %d bits", n, p.Name, p.RSAMinBits, p.RSAMaxBits)
			}
			return nil
		}
		kt = RSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			kt = ECDSAP256
		case elliptic.P384():
			kt = ECDSAP384
		default:
			return acme.BadPublicKey("ECDSA curve %s: profile %q takes %s", k.Curve.Params().Name, p.Name, p.keyTypes())
		}
	case ed25519.PublicKey:
		kt = Ed25519
	default:
		return acme.BadPublicKey("key type %T: profile %q takes %s", pub, p.Name, p.keyTypes())
	}
	if !slices.Contains(p.KeyTypes, kt) {
		return acme.BadPublicKey("%s key: profile %q takes %s", kt, p.Name, p.keyTypes())
	}
	return nil
}

func (p *Profile) keyTypes() string {
	names := make([]string, len(p.KeyTypes))
	for i, k := range p.KeyTypes {
		names[i] = string(k)
		if k == RSA {
			names[i] = fmt.Sprintf("rsa (%d to %d bits)", p.RSAMinBits, p.RSAMaxBits)
		}
	}
	return strings.Join(names, ", ")
}

// CheckURIs applies the URI SAN rule to a CSR: under a SPIFFE profile it
// may ask for the account's SPIFFE ID and nothing else; elsewhere for no
// URI at all.
func (p *Profile) CheckURIs(uris []*url.URL, spiffeID string) *acme.Problem {
	for _, u := range uris {
		switch {
		case !p.SPIFFE:
			return acme.BadCSR("CSR asks for URI %q; profile %q issues no URI SANs (the spiffe profile carries the account's SPIFFE ID)", u, p.Name)
		case u.String() != spiffeID:
			return acme.BadCSR("CSR asks for URI %q; profile %q puts only the account's SPIFFE ID %q in", u, p.Name, spiffeID)
		}
	}
	return nil
}

// CommonNameFor is the CN the certificate gets from the CSR's, given the
// order's identifiers (already checked to include the CSR's CN, if any).
func (p *Profile) CommonNameFor(csrCN string, ids []acme.Identifier) string {
	switch p.CommonName {
	case CNDrop:
		return ""
	case CNFirst:
		if csrCN == "" && len(ids) > 0 {
			return ids[0].Value
		}
	}
	return csrCN
}

// earliestNotBefore is how far in the past an order may ask notBefore to be.
const earliestNotBefore = time.Hour

// Window decides a certificate's notBefore and notAfter at time now from
// the order's requested ones (zero when not asked): notBefore the asked one
// or now less the backdate; notAfter the asked one or the default lifetime
// after notBefore. The lifetime may not exceed limit, the profile's
// maximum or less (an EAB key's). RFC 8555 §7.4 leaves the policy to the
// server; a problem's detail gives the limit.
func (p *Profile) Window(now, notBefore, notAfter time.Time, limit time.Duration) (time.Time, time.Time, *acme.Problem) {
	nb := notBefore
	if nb.IsZero() {
		nb = now.Add(-p.Backdate)
	}
	na := notAfter
	if na.IsZero() {
		na = nb.Add(min(p.DefaultValidity, limit))
	}
	switch {
	case nb.Before(now.Add(-earliestNotBefore)):
		return nb, na, acme.Malformed("notBefore %s is more than %s in the past", nb.Format(time.RFC3339), earliestNotBefore)
	case nb.After(now.Add(limit)):
		return nb, na, acme.Malformed("notBefore %s is too far in the future: at most %s ahead", nb.Format(time.RFC3339), limit)
	case !na.After(nb):
		return nb, na, acme.Malformed("notAfter must be later than notBefore")
	case !na.After(now):
		return nb, na, acme.Malformed("notAfter %s is in the past", na.Format(time.RFC3339))
	case na.Sub(nb) > limit:
		return nb, na, acme.Malformed("notAfter %s is beyond the longest validity allowed: at most %s from notBefore (profile %q), so no later than %s",
			na.Format(time.RFC3339), limit, p.Name, nb.Add(limit).Format(time.RFC3339))
	}
	return nb.UTC(), na.UTC(), nil
}

// Limit is the longest lifetime an order under p may get when an EAB key
// caps it at keyMax (0: no cap).
func (p *Profile) Limit(keyMax time.Duration) time.Duration {
	if keyMax > 0 && keyMax < p.MaxValidity {
		return keyMax
	}
	return p.MaxValidity
}

// SANs splits the order's identifiers into the certificate's DNS and IP
// SANs.
func SANs(ids []acme.Identifier) (dns []string, ips []net.IP) {
	for _, id := range ids {
		if id.Type == acme.IdentifierIP {
			ips = append(ips, net.ParseIP(id.Value))
		} else {
			dns = append(dns, id.Value)
		}
	}
	return dns, ips
}
