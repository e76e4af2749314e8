package ca

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"strings"
	"time"
)

// Alternates are the alternate chains (RFC 8555 §7.4.2) of acmed's issuers:
// PEM bundles whose first certificate is a cross-signed version of an
// issuer (its subject and key, signed by another root), so that a client
// trusting only that other root can verify acmed's certificates. They are
// keyed by the issuer's public key, not its certificate: a certificate
// signed by that key verifies under either, and each issuer keeps its own
// alternates when there are several. Immutable after LoadAlternates; safe
// for concurrent use. A nil *Alternates has none.
type Alternates struct {
	cfg Config
	// byKey holds each issuer key's chains in the order configured: the
	// order of the alternate URLs, /cert/ID/1 first.
	byKey map[[sha256.Size]byte][]*altChain
	// keyOf finds an issuer key from a leaf's AuthorityKeyId: the
	// issuer's SubjectKeyId and the cross-signed certificate's.
	keyOf map[string][sha256.Size]byte
}

type altChain struct {
	file     string
	first    *x509.Certificate // the cross-signed issuer
	pem      []byte            // every certificate of the bundle, re-encoded
	notAfter time.Time         // the earliest of the bundle's
}

// LoadAlternates reads the PEM bundles files name and checks each against
// issuers (the certificates acmed signs with): the first certificate has
// the subject and public key of one of them, may sign certificates, and
// is not that issuer's own certificate; each certificate is signed by the
// next; none has expired or is not yet valid. An error names the file and
// what is wrong, on one line.
func LoadAlternates(files []string, issuers []*x509.Certificate, cfg Config) (*Alternates, error) {
	a := &Alternates{cfg: cfg, byKey: map[[sha256.Size]byte][]*altChain{}, keyOf: map[string][sha256.Size]byte{}}
	seen := map[string]string{} // bundle PEM -> file
	for _, file := range files {
		certs, err := readBundle(file)
		if err != nil {
			return nil, err
		}
		issuer, err := crossSigned(file, certs[0], issuers)
		if err != nil {
			return nil, err
		}
		c := &altChain{file: file, first: certs[0], notAfter: certs[0].NotAfter}
		if err := checkBundle(file, certs, cfg.now()); err != nil {
			return nil, err
		}
		for _, cert := range certs {
			c.pem = append(c.pem, encodeCert(cert.Raw)...)
			if cert.NotAfter.Before(c.notAfter) {
				c.notAfter = cert.NotAfter
			}
		}
		if other, ok := seen[string(c.pem)]; ok {
			return nil, fmt.Errorf("ca: --alternate-chain %s: the same chain as --alternate-chain %s", file, other)
		}
		seen[string(c.pem)] = file
		key := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
		a.byKey[key] = append(a.byKey[key], c)
		for _, kid := range [][]byte{issuer.SubjectKeyId, c.first.SubjectKeyId} {
			if len(kid) > 0 {
				a.keyOf[string(kid)] = key
			}
		}
	}
	return a, nil
}

// readBundle parses every PEM block of file, which must all be
// certificates: a private key pasted in by mistake is refused, not served.
func readBundle(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("ca: --alternate-chain %s: %w", file, unwrapPath(err))
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("ca: --alternate-chain %s: block %d is %s PEM; want CERTIFICATE blocks only", file, len(certs)+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca: --alternate-chain %s: certificate %d: %w", file, len(certs)+1, err)
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("ca: --alternate-chain %s: no CERTIFICATE PEM block", file)
	}
	return certs, nil
}

// crossSigned returns the issuer first is a cross-signed version of, or
// says what differs from the nearest one.
func crossSigned(file string, first *x509.Certificate, issuers []*x509.Certificate) (*x509.Certificate, error) {
	var sameKey, sameSubject *x509.Certificate
	for _, is := range issuers {
		keyEq := bytes.Equal(is.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo)
		subjEq := bytes.Equal(is.RawSubject, first.RawSubject)
		switch {
		case keyEq && subjEq:
			if bytes.Equal(is.Raw, first.Raw) {
				return nil, fmt.Errorf("ca: --alternate-chain %s: its first certificate is the issuer %q itself, not a cross-signed version of it", file, is.Subject)
			}
			if !first.IsCA || first.KeyUsage&x509.KeyUsageCertSign == 0 {
				return nil, fmt.Errorf("ca: --alternate-chain %s: its first certificate (%q) is not a CA certificate allowed to sign certificates", file, first.Subject)
			}
			return is, nil
		case keyEq && sameKey == nil:
			sameKey = is
		case subjEq && sameSubject == nil:
			sameSubject = is
		}
	}
	switch {
	case sameKey != nil:
		return nil, fmt.Errorf("ca: --alternate-chain %s: its first certificate has the public key of issuer %q but the subject %q", file, sameKey.Subject, first.Subject)
	case sameSubject != nil:
		return nil, fmt.Errorf("ca: --alternate-chain %s: its first certificate has the subject of issuer %q but another public key", file, sameSubject.Subject)
	}
	names := make([]string, len(issuers))
	for i, is := range issuers {
		names[i] = fmt.Sprintf("%q", is.Subject)
	}
	return nil, fmt.Errorf("ca: --alternate-chain %s: its first certificate (%q) has neither the subject nor the public key of an issuer acmed signs with (%s)", file, first.Subject, strings.Join(names, ", "))
}

// checkBundle checks that each certificate is signed by the next and that
// all are valid now.
func checkBundle(file string, certs []*x509.Certificate, now time.Time) error {
	for i, c := range certs {
		switch {
		case now.After(c.NotAfter):
			return fmt.Errorf("ca: --alternate-chain %s: certificate %d (%q) expired at %s", file, i+1, c.Subject, c.NotAfter.UTC().Format(time.RFC3339))
		case now.Before(c.NotBefore):
			return fmt.Errorf("ca: --alternate-chain %s: certificate %d (%q) is not valid before %s", file, i+1, c.Subject, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if i+1 == len(certs) {
			break
		}
		if err := c.CheckSignatureFrom(certs[i+1]); err != nil {
			return fmt.Errorf("ca: --alternate-chain %s: certificate %d (%q) is not signed by certificate %d (%q): %v", file, i+1, c.Subject, i+2, certs[i+1].Subject, err)
		}
	}
	return nil
}

// Len is the number of alternate chains configured, for all issuers.
func (a *Alternates) Len() int {
	if a == nil {
		return 0
	}
	n := 0
	for _, cs := range a.byKey {
		n += len(cs)
	}
	return n
}

// Chains returns the alternate chains of the certificate at the head of
// chainPEM (a stored chain: the leaf, then its issuers), each in PEM,
// leaf first and then a cross-signed chain of its issuer, in the order
// configured; none (nil) for a leaf whose issuer has none, or whose chain
// cannot be read. A chain that has expired since start-up is left out.
func (a *Alternates) Chains(chainPEM []byte) [][]byte {
	if a.Len() == 0 {
		return nil
	}
	block, _ := pem.Decode(chainPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	now := a.cfg.now()
	leafPEM := encodeCert(leaf.Raw)
	var out [][]byte
	for _, c := range a.issuerChains(leaf) {
		if now.After(c.notAfter) {
			continue
		}
		out = append(out, append(bytes.Clone(leafPEM), c.pem...))
	}
	return out
}

// issuerChains finds the chains of leaf's issuer: by its AuthorityKeyId,
// as acmed's leaves all have one, else by checking its signature. The
// issuer's subject must be the one the leaf names too.
func (a *Alternates) issuerChains(leaf *x509.Certificate) []*altChain {
	var chains []*altChain
	if key, ok := a.keyOf[string(leaf.AuthorityKeyId)]; ok && len(leaf.AuthorityKeyId) > 0 {
		chains = a.byKey[key]
	} else if len(leaf.AuthorityKeyId) == 0 {
		for _, cs := range a.byKey {
			if bytes.Equal(cs[0].first.RawSubject, leaf.RawIssuer) && leaf.CheckSignatureFrom(cs[0].first) == nil {
				chains = cs
				break
			}
		}
	}
	var out []*altChain
	for _, c := range chains {
		if bytes.Equal(c.first.RawSubject, leaf.RawIssuer) {
			out = append(out, c)
		}
	}
	return out
}
