package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// SignOCSP signs an OCSP response with the issuing CA's own key, which so
// never leaves this package: the CA is its own responder (RFC 6960
// §4.2.2.2), named by its subject, and relying parties need nothing but
// the issuer they already hold to check the answer.
func (l *Local) SignOCSP(tmpl ocsp.Response) ([]byte, error) {
	tmpl.Certificate = nil
	der, err := ocsp.CreateResponse(l.intermediate, l.intermediate, tmpl, l.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign OCSP response: %w", err)
	}
	return der, nil
}

// oidOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1).
var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// DelegatedOCSP is an OCSP signer with a responder certificate of its own
// (RFC 6960 §4.2.2.2): a fresh P-256 key in memory, certified by the
// intermediate for OCSP signing only, replaced before a response signed
// with it could outlive it. The CA key then signs a certificate every so
// often instead of every response; each response carries the responder
// certificate. Every replica makes its own. Safe for concurrent use.
type DelegatedOCSP struct {
	l     *Local
	cover time.Duration // the longest a response is valid (nextUpdate - thisUpdate)

	mu     sync.Mutex
	cert   *x509.Certificate
	key    crypto.Signer
	renews time.Time // when the next response gets a new certificate
}

// minDelegateCover keeps a responder certificate from being replaced every
// few responses.
const minDelegateCover = 5 * time.Minute

// DelegatedOCSP returns a delegated OCSP signer for responses valid up to
// cover each (at least 5 minutes). Its responder certificates are valid
// for twice that, and replaced once less than cover remains, so that every
// response expires before its signer does (relying parties reject a
// response whose signer expired). The first certificate is made now, so
// that a CA that cannot make one fails at startup.
func (l *Local) DelegatedOCSP(cover time.Duration) (*DelegatedOCSP, error) {
	if cover < minDelegateCover {
		return nil, fmt.Errorf("ca: OCSP response validity %s: a delegated responder needs at least %s", cover, minDelegateCover)
	}
	d := &DelegatedOCSP{l: l, cover: cover}
	if _, _, err := d.current(); err != nil {
		return nil, err
	}
	return d, nil
}

// SignOCSP signs tmpl with the current responder key and includes the
// responder certificate.
func (d *DelegatedOCSP) SignOCSP(tmpl ocsp.Response) ([]byte, error) {
	cert, key, err := d.current()
	if err != nil {
		return nil, err
	}
	tmpl.Certificate = cert
	der, err := ocsp.CreateResponse(d.l.intermediate, cert, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign OCSP response: %w", err)
	}
	return der, nil
}

// Certificate is the current responder certificate.
func (d *DelegatedOCSP) Certificate() (*x509.Certificate, error) {
	cert, _, err := d.current()
	return cert, err
}

// current returns the responder certificate and key, replacing them
// first when they are due.
func (d *DelegatedOCSP) current() (*x509.Certificate, crypto.Signer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.l.cfg.now()
	if d.cert != nil && now.Before(d.renews) {
		return d.cert, d.key, nil
	}
	cert, key, err := d.l.ocspResponder(now, 2*d.cover)
	if err != nil {
		if d.cert != nil && now.Before(d.cert.NotAfter) {
			// Still valid: keep answering, and try again next time.
			return d.cert, d.key, nil
		}
		return nil, nil, err
	}
	d.cert, d.key = cert, key
	// Only an intermediate near its end makes the certificate shorter
	// than 2×cover; it is then replaced halfway rather than every time.
	d.renews = cert.NotAfter.Add(-d.cover)
	if half := now.Add(cert.NotAfter.Sub(now) / 2); d.renews.Before(half) {
		d.renews = half
	}
	return cert, key, nil
}

// ocspResponder issues a delegated responder certificate for a new key:
// id-kp-OCSPSigning its only extended key usage, and id-pkix-ocsp-nocheck,
// since asking the responder about its own certificate would go round in
// a circle (RFC 6960 §4.2.2.2.1); its short life stands in for revocation.
func (l *Local) ocspResponder(now time.Time, validity time.Duration) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), l.cfg.rand())
	if err != nil {
		return nil, nil, fmt.Errorf("ca: generate OCSP responder key: %w", err)
	}
	serial, err := randomSerial(l.cfg.rand())
	if err != nil {
		return nil, nil, err
	}
	skid, err := subjectKeyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(l.intermediate.NotAfter) {
		notAfter = l.intermediate.NotAfter
	}
	if !notAfter.After(now) {
		return nil, nil, errors.New("ca: the intermediate has expired: no OCSP responder certificate")
	}
	nocheck, _ := asn1.Marshal(asn1.NullRawValue)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "OCSP responder for " + l.intermediate.Subject.CommonName},
		NotBefore:             now.Add(-serverCertBackdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		AuthorityKeyId:        l.intermediate.SubjectKeyId,
		ExtraExtensions:       []pkix.Extension{{Id: oidOCSPNoCheck, Value: nocheck}},
	}
	der, err := x509.CreateCertificate(l.cfg.rand(), tmpl, l.intermediate, key.Public(), l.key)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: sign OCSP responder certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: parse OCSP responder certificate: %w", err)
	}
	return cert, key, nil
}
