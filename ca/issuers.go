package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
)

// ErrNoRootKey is returned (wrapped) by NewIntermediate when --data holds
// no root.key: the root is offline, and a new intermediate must be signed
// where it is, then installed.
var ErrNoRootKey = errors.New("ca: no root key")

// Name is the intermediate's CRL name (CRLName): how the store, the CRL
// URL and a certificate's record name this issuer.
func (l *Local) Name() string { return l.name }

// IntermediatePEM is the issuing intermediate in PEM. The slice is the
// caller's.
func (l *Local) IntermediatePEM() []byte { return bytes.Clone(l.intermediatePEM) }

// WithIntermediate is a Local under the same root signing with another
// intermediate (a rotation's): certPEM's first certificate, with key. It
// checks what Load checks but the expiry, which the caller judges (an
// expired retired issuer is no error, an expired new one is).
func (l *Local) WithIntermediate(certPEM []byte, key crypto.Signer) (*Local, error) {
	cert, der, err := firstCert(certPEM)
	if err != nil {
		return nil, err
	}
	if err := cert.CheckSignatureFrom(l.root); err != nil {
		return nil, fmt.Errorf("ca: intermediate %q is not signed by the root %q: %w", cert.Subject.CommonName, l.root.Subject.CommonName, err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("ca: intermediate %q cannot sign certificates (BasicConstraints CA and KeyUsage certSign are required)", cert.Subject.CommonName)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca: the key does not match the public key of intermediate %q", cert.Subject.CommonName)
	}
	return &Local{
		cfg: l.cfg, root: l.root, rootPEM: l.rootPEM,
		intermediate: cert, intermediatePEM: encodeCert(der), key: key, name: CRLName(cert),
	}, nil
}

// CheckNew refuses an intermediate that cannot be made the active one:
// expired, or not yet valid; its chain to the root verifies at now.
func (l *Local) CheckNew() error {
	roots := x509.NewCertPool()
	roots.AddCert(l.root)
	_, err := l.intermediate.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: l.cfg.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return fmt.Errorf("ca: intermediate %q does not verify to the root now: %w", l.intermediate.Subject.CommonName, err)
	}
	return nil
}

// NewIntermediate signs a new intermediate for key with the root key in
// dir (root.key), as Init made the first, and returns it in PEM. Its
// notAfter is no later than the root's. Without root.key it returns an
// error wrapping ErrNoRootKey.
func (l *Local) NewIntermediate(dir string, key crypto.Signer) ([]byte, error) {
	rootKeyPath := filepath.Join(dir, RootKeyFile)
	if _, err := os.Lstat(rootKeyPath); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s is absent (the root is offline)", ErrNoRootKey, rootKeyPath)
	}
	rootKey, err := readKey(rootKeyPath)
	if err != nil {
		return nil, err
	}
	return l.NewIntermediateWith(rootKey, rootKeyPath, key)
}

// NewIntermediateWith is NewIntermediate with the root's key given (one
// in a token); rootKeyName names it in errors.
func (l *Local) NewIntermediateWith(rootKey crypto.Signer, rootKeyName string, key crypto.Signer) ([]byte, error) {
	if pub, ok := rootKey.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(l.root.PublicKey) {
		return nil, fmt.Errorf("ca: %s does not match the root certificate", rootKeyName)
	}
	now := l.cfg.now()
	tmpl, err := intermediateTemplate(l.cfg.rand(), key.Public(), now)
	if err != nil {
		return nil, err
	}
	if tmpl.NotAfter.After(l.root.NotAfter) {
		tmpl.NotAfter = l.root.NotAfter
	}
	der, err := x509.CreateCertificate(l.cfg.rand(), tmpl, l.root, key.Public(), rootKey)
	if err != nil {
		return nil, fmt.Errorf("ca: sign the new intermediate: %w", err)
	}
	return encodeCert(der), nil
}

// ParseKeyPEM reads a private key as acmed init --import-key does (ECDSA
// or RSA; PKCS#8, SEC1 or PKCS#1 PEM); name names it in errors.
func ParseKeyPEM(b []byte, name string) (crypto.Signer, error) {
	return parseImportKey(b, name)
}

// ParseCertPEM is the first certificate of PEM b, as an issuer's record
// holds it.
func ParseCertPEM(b []byte) (*x509.Certificate, error) {
	cert, _, err := firstCert(b)
	return cert, err
}

// firstCert is the first CERTIFICATE block of b.
func firstCert(b []byte) (*x509.Certificate, []byte, error) {
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, nil, errors.New("ca: intermediate: not PEM with a CERTIFICATE block")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("ca: intermediate: %w", err)
		}
		return cert, block.Bytes, nil
	}
}

// IssuerSet is the intermediates a CA signs with at one time: Active
// signs new certificates; each (Active among them) signs the CRLs and
// OCSP answers of the certificates it issued. Immutable.
type IssuerSet struct {
	Active *Local
	// Original is the intermediate in --data; certificate records
	// without an issuer are its.
	Original *Local
	All      []*Local // oldest first
	activeDP []string
}

// NewIssuerSet makes a set. A non-empty crlBase makes every certificate
// Active signs name Active's CRL under it (CRLURL), whatever the request
// said.
func NewIssuerSet(original, active *Local, all []*Local, crlBase string) *IssuerSet {
	s := &IssuerSet{Active: active, Original: original, All: all}
	if crlBase != "" {
		s.activeDP = []string{CRLURL(crlBase, active.name)}
	}
	return s
}

// Get is the issuer named name (CRLName), nil if none.
func (s *IssuerSet) Get(name string) *Local {
	for _, l := range s.All {
		if l.name == name {
			return l
		}
	}
	return nil
}

// Issued reports whether the certificate whose record names certIssuer
// (acme.Certificate.Issuer) was signed by l.
func (s *IssuerSet) Issued(l *Local, certIssuer string) bool {
	return certIssuer == l.name || certIssuer == "" && l == s.Original
}

// CRLURL is where the CRL of the issuer named name is published under
// base: base/crl/NAME.crl.
func CRLURL(base, name string) string {
	return strings.TrimSuffix(base, "/") + "/crl/" + name + ".crl"
}

// Rotating signs with the active issuer of the set it holds, which a
// rotation swaps at once for every request after it (an atomic pointer:
// the hot path takes no lock). Safe for concurrent use.
type Rotating struct {
	cur atomic.Pointer[IssuerSet]
}

// NewRotating starts with s.
func NewRotating(s *IssuerSet) *Rotating {
	r := &Rotating{}
	r.cur.Store(s)
	return r
}

// Set is the current set.
func (r *Rotating) Set() *IssuerSet { return r.cur.Load() }

// Swap makes s the current set.
func (r *Rotating) Swap(s *IssuerSet) { r.cur.Store(s) }

// Sign signs with the active issuer (Local.Sign). Issued.Issuer is ""
// while that is the Original: certificate records then stay in the
// format an acmed from before rotation reads (storage/record), and ""
// means the Original (IssuerSet.Issued).
func (r *Rotating) Sign(ctx context.Context, req Request) (*Issued, error) {
	s := r.cur.Load()
	if s.activeDP != nil {
		req.CRLDistributionPoints = s.activeDP
	}
	issued, err := s.Active.Sign(ctx, req)
	if err == nil && s.Active == s.Original {
		issued.Issuer = ""
	}
	return issued, err
}

// Intermediate is the active issuer's certificate.
func (r *Rotating) Intermediate() *x509.Certificate { return r.cur.Load().Active.Intermediate() }
