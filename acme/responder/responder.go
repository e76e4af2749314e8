// Package responder is acmed's OCSP responder (RFC 6960): it tells relying
// parties whether a certificate this CA issued is good, revoked (when and
// why) or unknown, over HTTP GET and POST (Appendix A), in responses the
// issuing CA signs, itself or through a delegated responder certificate
// (package ca holds the keys either way).
//
// Every answer reads the certificate's current status from the store, so
// a revocation on any replica is answered at once; only the signature is
// reused, briefly, for a status that has not changed.
package responder

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
)

// Lookup finds a certificate this CA issued by serial (canonical form);
// nil with a nil error is none. authority.Authority is one.
type Lookup interface {
	CertificateStatus(ctx context.Context, serial string) (*acme.Certificate, error)
}

// Signer signs OCSP responses about the issuer's certificates, setting
// the responder certificate if it has one: *ca.Local signs with the CA
// key itself, *ca.DelegatedOCSP with a responder certificate.
type Signer interface {
	SignOCSP(tmpl ocsp.Response) ([]byte, error)
}

const (
	// DefaultValidity is nextUpdate - thisUpdate: how long a relying
	// party (and an HTTP cache) may keep an answer, so the longest a
	// revocation can go unnoticed by one that has asked before.
	DefaultValidity = 4 * time.Hour
	// DefaultReuse is how long a signed answer is served again for a
	// certificate whose status has not changed.
	DefaultReuse = time.Minute
	// maxCached bounds the reused answers kept; a serial is a few dozen
	// bytes and an answer a few hundred.
	maxCached = 10000
)

// Issuer is one CA the responder answers for.
type Issuer struct {
	// Cert is the CA certificate that issues the leaves asked about:
	// requests name it by its name and key hashes.
	Cert   *x509.Certificate
	Signer Signer
	// Issued reports whether a certificate the Lookup found is this
	// CA's; nil: every one is. A serial another issuer of the same
	// store issued is unknown to this one.
	Issued func(c *acme.Certificate) bool
}

// Config wires a Responder.
type Config struct {
	// Issuer and Signer are the one CA answered for, unless Issuers is
	// set.
	Issuer *x509.Certificate
	Signer Signer
	// Issuers are the CAs answered for (a rotated CA's intermediates,
	// active and retired), read at each request: the set may change.
	Issuers func() []Issuer
	Lookup  Lookup
	// Validity is each answer's nextUpdate - thisUpdate; 0: DefaultValidity.
	Validity time.Duration
	// Reuse is how long a signed answer is reused; 0: DefaultReuse,
	// negative: every answer is signed afresh.
	Reuse  time.Duration
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: slog.Default()
}

// Responder answers OCSP requests; it is an http.Handler (http.go).
type Responder struct {
	cfg Config
	log *slog.Logger
	// hashes holds each issuer's name and key hashes under each hash a
	// request may use, by certificate (*x509.Certificate →
	// map[crypto.Hash]issuerHashes), made the first time it is asked for.
	hashes sync.Map

	mu    sync.Mutex
	cache map[cacheKey]*answer
}

type issuerHashes struct{ name, key []byte }

// New returns a Responder, or an error if the configuration lacks a part.
func New(cfg Config) (*Responder, error) {
	if cfg.Issuers == nil {
		if cfg.Issuer == nil || cfg.Signer == nil {
			return nil, errors.New("responder: Issuer and Signer, or Issuers, are required")
		}
		one := []Issuer{{Cert: cfg.Issuer, Signer: cfg.Signer}}
		cfg.Issuers = func() []Issuer { return one }
	}
	if cfg.Lookup == nil {
		return nil, errors.New("responder: Lookup is required")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = DefaultValidity
	}
	if cfg.Reuse == 0 {
		cfg.Reuse = DefaultReuse
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Responder{cfg: cfg, log: cfg.Logger, cache: map[cacheKey]*answer{}}
	for _, is := range cfg.Issuers() {
		if _, err := r.issuerHashes(is.Cert); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// issuerHashes is cert's name and key hashes under each hash a request
// may use.
func (r *Responder) issuerHashes(cert *x509.Certificate) (map[crypto.Hash]issuerHashes, error) {
	if h, ok := r.hashes.Load(cert); ok {
		return h.(map[crypto.Hash]issuerHashes), nil
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil, fmt.Errorf("responder: issuer public key: %w", err)
	}
	issuer := map[crypto.Hash]issuerHashes{}
	// The hashes x/crypto/ocsp parses requests with.
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		issuer[h] = issuerHashes{name: digest(h, cert.RawSubject), key: digest(h, spki.PublicKey.RightAlign())}
	}
	r.hashes.Store(cert, issuer)
	return issuer, nil
}

// issuerOf is the issuer req names, nil if none of this responder's.
func (r *Responder) issuerOf(req *ocsp.Request) *Issuer {
	for _, is := range r.cfg.Issuers() {
		hs, err := r.issuerHashes(is.Cert)
		if err != nil {
			continue
		}
		want := hs[req.HashAlgorithm]
		if bytes.Equal(req.IssuerNameHash, want.name) && bytes.Equal(req.IssuerKeyHash, want.key) {
			return &is
		}
	}
	return nil
}

// knownHash: the hashes x/crypto/ocsp parses requests with.
func knownHash(h crypto.Hash) bool {
	return h == crypto.SHA1 || h == crypto.SHA256 || h == crypto.SHA384 || h == crypto.SHA512
}

func digest(h crypto.Hash, b []byte) []byte {
	d := h.New()
	d.Write(b)
	return d.Sum(nil)
}

// answer is a DER OCSP response; a successful one has its validity and
// the status it states, an error response zero times.
type answer struct {
	der                    []byte
	thisUpdate, nextUpdate time.Time
	status                 status
}

// status is what an answer says, to tell whether it still holds.
type status struct {
	code      int // ocsp.Good, ocsp.Revoked or ocsp.Unknown
	revokedAt time.Time
	reason    int
}

func (s status) same(o status) bool {
	return s.code == o.code && s.revokedAt.Equal(o.revokedAt) && s.reason == o.reason
}

type cacheKey struct {
	issuer *x509.Certificate
	serial string
	hash   crypto.Hash
}

// Pre-built error answers (RFC 6960 §4.2.1); they carry no signature.
var (
	malformed    = &answer{der: ocsp.MalformedRequestErrorResponse}
	unauthorized = &answer{der: ocsp.UnauthorizedErrorResponse}
	tryLater     = &answer{der: ocsp.TryLaterErrorResponse}
	internal     = &answer{der: ocsp.InternalErrorErrorResponse}
)

// respond answers one DER OCSP request. It never fails: what goes wrong
// becomes an OCSP error response, as relying parties expect.
func (r *Responder) respond(ctx context.Context, raw []byte) *answer {
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		// Signed requests too: nothing here needs to know who asks.
		r.log.DebugContext(ctx, "OCSP: malformed request", "err", err)
		return malformed
	}
	if !knownHash(req.HashAlgorithm) || req.SerialNumber == nil {
		return malformed
	}
	iss := r.issuerOf(req)
	if iss == nil {
		// §2.3: not a certificate this responder can speak for.
		r.log.DebugContext(ctx, "OCSP: request for another issuer", "serial", serialText(req.SerialNumber))
		return unauthorized
	}
	st := status{code: ocsp.Unknown}
	serial := ""
	if req.SerialNumber.Sign() > 0 {
		serial = acme.SerialHex(req.SerialNumber)
		cert, err := r.cfg.Lookup.CertificateStatus(ctx, serial)
		if err != nil {
			r.log.WarnContext(ctx, "OCSP: certificate lookup", "serial", serial, "err", err)
			return tryLater
		}
		switch {
		case cert == nil:
		case iss.Issued != nil && !iss.Issued(cert):
			// Another intermediate's: this one never issued it.
		case cert.Revoked:
			st = status{code: ocsp.Revoked, revokedAt: cert.RevokedAt.UTC().Truncate(time.Second), reason: cert.Reason}
		default:
			st.code = ocsp.Good
		}
	}
	now := r.cfg.Now().UTC().Truncate(time.Second)
	key := cacheKey{issuer: iss.Cert, serial: serial, hash: req.HashAlgorithm}
	if a := r.reused(key, st, now); a != nil {
		return a
	}
	a := &answer{thisUpdate: now, nextUpdate: now.Add(r.cfg.Validity), status: st}
	a.der, err = iss.Signer.SignOCSP(ocsp.Response{
		Status: st.code, SerialNumber: req.SerialNumber,
		ThisUpdate: a.thisUpdate, NextUpdate: a.nextUpdate,
		RevokedAt: st.revokedAt, RevocationReason: st.reason,
		// The answer names the certificate as the request did.
		IssuerHash: req.HashAlgorithm,
	})
	if errors.Is(err, ca.ErrUnavailable) {
		// The CA's token failed (a closed session): it opens a fresh
		// one for the next request, so the relying party may retry.
		r.log.WarnContext(ctx, "OCSP: signer unavailable", "serial", serial, "err", err)
		return tryLater
	}
	if err != nil {
		r.log.ErrorContext(ctx, "OCSP: sign response", "serial", serial, "err", err)
		return internal
	}
	if st.code != ocsp.Unknown {
		// Unknown serials are anyone's to make up: keeping their
		// answers would let a stranger fill the cache.
		r.keep(key, a, now)
	}
	return a
}

// reused is the answer kept for key if it states st and is recent enough.
func (r *Responder) reused(key cacheKey, st status, now time.Time) *answer {
	if r.cfg.Reuse < 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.cache[key]
	if a == nil || !a.status.same(st) || !now.Before(a.thisUpdate.Add(r.cfg.Reuse)) {
		return nil
	}
	return a
}

func (r *Responder) keep(key cacheKey, a *answer, now time.Time) {
	if r.cfg.Reuse < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.cache) >= maxCached {
		for k, old := range r.cache {
			if !now.Before(old.thisUpdate.Add(r.cfg.Reuse)) {
				delete(r.cache, k)
			}
		}
		if len(r.cache) >= maxCached {
			// All recent: more certificates are being asked about
			// within Reuse than are kept; start again.
			clear(r.cache)
		}
	}
	r.cache[key] = a
}

// serialText is a serial for the log in the one form acmed shows serials
// in; a non-positive one (never a certificate's) in decimal.
func serialText(n *big.Int) string {
	if n.Sign() > 0 {
		return acme.SerialHex(n)
	}
	return n.String()
}
