package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// issuerPoll bounds how long a replica signs with the old intermediate
// after a rotation on another: it reads the store's issuer set this
// often (one small GET), and swaps its signer when the set changed.
const issuerPoll = 5 * time.Second

// issuers keeps this replica's signer (ca.Rotating) in step with the
// store's issuer set (storage.Issuers), and rotates on an operator's
// request (authority.Issuers). It also gives the CRL publishers and the
// OCSP responder every issuer whose certificates may still be valid.
type issuers struct {
	store    storage.Issuers
	rot      *ca.Rotating
	original *ca.Local
	c        config // --data, --ca-backend and the --pkcs11-* flags
	crlBase  string // certificates name their issuer's CRL under it
	log      *slog.Logger
	now      func() time.Time

	// ocspCover is the OCSP responses' validity, for delegated
	// responders (--ocsp-delegated); 0: the issuers sign themselves.
	ocspCover time.Duration

	mu        sync.Mutex // one refresh or rotation at a time
	rev       uint64     // the revision the signer was built from
	loaded    map[string]*loadedIssuer
	delegated map[string]*ca.DelegatedOCSP

	set  atomic.Pointer[storage.IssuerSet] // as last read
	ocsp atomic.Pointer[[]responder.Issuer]
	crls atomic.Pointer[[]crl.SetIssuer]
}

type loadedIssuer struct {
	l     *ca.Local
	close func()
}

func newIssuers(c config, store storage.Issuers, original *ca.Local, crlBase string, log *slog.Logger) *issuers {
	m := &issuers{
		store: store, original: original, c: c, crlBase: crlBase, log: log, now: time.Now,
		rot:       ca.NewRotating(ca.NewIssuerSet(original, original, []*ca.Local{original}, crlBase)),
		loaded:    map[string]*loadedIssuer{original.Name(): {l: original, close: func() {}}},
		delegated: map[string]*ca.DelegatedOCSP{},
	}
	if c.OCSP && c.OCSPDelegated {
		m.ocspCover = c.OCSPValidity
	}
	m.publish(m.rot.Set())
	return m
}

// startIssuers reads the store's issuer set (recording --data's
// intermediate as the first if there is none) and returns this replica's
// view of it, signing with the active issuer.
func startIssuers(ctx context.Context, c config, store storage.Store, l *ca.Local, crlBase string, log *slog.Logger) (*issuers, error) {
	s, ok := store.(storage.Issuers)
	if !ok {
		return nil, errors.New("this store keeps no issuer set")
	}
	m := newIssuers(c, s, l, crlBase, log)
	if err := m.start(ctx); err != nil {
		m.close()
		return nil, err
	}
	if active := m.rot.Set().Active.Intermediate(); m.now().After(active.NotAfter) {
		m.close()
		what := "the active intermediate " + ca.CRLName(active)
		if active == l.Intermediate() {
			what = filepath.Join(c.Data, ca.IntermediateCertFile)
		}
		return nil, fmt.Errorf("ca: %s expired at %s", what, active.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	return m, nil
}

// start records --data's intermediate as the store's first issuer if the
// store has none yet, and loads the active one: a replica started after
// a rotation signs with the new intermediate from its first request.
func (m *issuers) start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	set, err := m.store.Issuers(ctx)
	if err != nil {
		return fmt.Errorf("reading the CA's issuers: %w", err)
	}
	if len(set.Issuers) == 0 {
		set, err = m.store.UpdateIssuers(ctx, func(s *storage.IssuerSet) error {
			if len(s.Issuers) == 0 {
				now := m.now().UTC()
				s.Issuers = []storage.Issuer{{Name: m.original.Name(), CertPEM: m.original.IntermediatePEM(),
					State: storage.IssuerActive, Original: true, Created: m.original.Intermediate().NotBefore.UTC(), Activated: now}}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("recording the CA's first issuer: %w", err)
		}
	}
	if o := original(set); o == nil || o.Name != m.original.Name() {
		return fmt.Errorf("the store's first issuer is not --data %s's intermediate (%s)", m.c.Data, m.original.Name())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.apply(ctx, set); err != nil {
		return err
	}
	return nil
}

func original(set *storage.IssuerSet) *storage.Issuer {
	for i := range set.Issuers {
		if set.Issuers[i].Original {
			return &set.Issuers[i]
		}
	}
	return nil
}

// run polls the store's issuer set until ctx ends.
func (m *issuers) run(ctx context.Context) {
	t := time.NewTicker(issuerPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := m.refresh(ctx); err != nil && ctx.Err() == nil {
			m.log.ErrorContext(ctx, "CA issuers", "err", err)
		}
	}
}

// refresh reads the issuer set and applies it if it changed.
func (m *issuers) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, issuerPoll)
	defer cancel()
	set, err := m.store.Issuers(ctx)
	if err != nil {
		return fmt.Errorf("reading the issuer set: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if set.Revision == m.rev {
		return nil
	}
	return m.apply(ctx, set)
}

// apply loads what set adds and swaps the signer to its active issuer.
// An issuer this replica cannot load (its key out of reach) is logged and
// left out; if that is the active one, the signer is not swapped, and the
// next poll tries again.
func (m *issuers) apply(ctx context.Context, set *storage.IssuerSet) error {
	m.set.Store(set)
	now := m.now()
	var all []*ca.Local
	var active *ca.Local
	var activeErr error
	keep := map[string]bool{}
	for i := range set.Issuers {
		is := &set.Issuers[i]
		li, err := m.load(is)
		if err != nil {
			if is.State == storage.IssuerActive {
				activeErr = err
			}
			m.log.ErrorContext(ctx, "CA issuer not loaded", "issuer", is.Name, "state", is.State, "err", err)
			continue
		}
		keep[is.Name] = true
		if is.State != storage.IssuerActive && !now.Before(li.l.Intermediate().NotAfter) {
			continue // expired: nothing it issued is valid any more
		}
		all = append(all, li.l)
		if is.State == storage.IssuerActive {
			active = li.l
		}
	}
	for name, li := range m.loaded {
		if !keep[name] && li.l != m.original {
			li.close()
			delete(m.loaded, name)
		}
	}
	if active == nil {
		if activeErr == nil {
			activeErr = errors.New("the store's issuer set has no active issuer")
		}
		return fmt.Errorf("still signing with %s: %w", m.rot.Set().Active.Name(), activeErr)
	}
	prev := m.rot.Set().Active
	next := ca.NewIssuerSet(m.original, active, all, m.crlBase)
	m.rot.Swap(next)
	m.publish(next)
	m.rev = set.Revision
	if prev != active {
		m.log.InfoContext(ctx, "signing with a new intermediate", "issuer", active.Name(), "previous", prev.Name(),
			"subject", active.Intermediate().Subject.CommonName)
	}
	return nil
}

// load returns the issuer, from memory if loaded before.
func (m *issuers) load(is *storage.Issuer) (*loadedIssuer, error) {
	if li := m.loaded[is.Name]; li != nil {
		return li, nil
	}
	var key crypto.Signer
	closeKey := func() {}
	switch {
	case len(is.WrappedKey) > 0:
		kek, err := ca.KEK(m.c.Data)
		if err != nil {
			return nil, err
		}
		if key, err = ca.UnwrapKey(kek, is.Name, is.WrappedKey); err != nil {
			return nil, err
		}
	case is.KeyLabel != "":
		if m.c.CABackend != backendPKCS11 {
			return nil, fmt.Errorf("its key is %q in a PKCS#11 token, and this replica runs --ca-backend %s", is.KeyLabel, m.c.CABackend)
		}
		cfg := m.c.PKCS11
		cfg.KeyLabel = is.KeyLabel
		s, err := ca.OpenPKCS11(cfg)
		if err != nil {
			return nil, err
		}
		key, closeKey = s, func() { _ = s.Close() }
	default:
		return nil, errors.New("the store says nothing of where its key is")
	}
	l, err := m.original.WithIntermediate(is.CertPEM, key)
	if err != nil {
		closeKey()
		return nil, err
	}
	if l.Name() != is.Name {
		closeKey()
		return nil, fmt.Errorf("its certificate is named %s", l.Name())
	}
	li := &loadedIssuer{l: l, close: closeKey}
	m.loaded[is.Name] = li
	return li, nil
}

// publish hands the set's issuers to OCSP and the CRL publishers.
func (m *issuers) publish(s *ca.IssuerSet) {
	oc := make([]responder.Issuer, 0, len(s.All))
	cr := make([]crl.SetIssuer, 0, len(s.All))
	for _, l := range s.All {
		issued := func(c *acme.Certificate) bool { return s.Issued(l, c.Issuer) }
		var signer responder.Signer = l
		if m.ocspCover > 0 {
			d := m.delegated[l.Name()]
			if d == nil {
				var err error
				if d, err = l.DelegatedOCSP(m.ocspCover); err != nil {
					m.log.Error("OCSP: no delegated responder; the issuer signs itself", "issuer", l.Name(), "err", err)
				} else {
					m.delegated[l.Name()] = d
				}
			}
			if d != nil {
				signer = d
			}
		}
		oc = append(oc, responder.Issuer{Cert: l.Intermediate(), Signer: signer, Issued: issued})
		cr = append(cr, crl.SetIssuer{Issuer: l, Issued: issued})
	}
	m.ocsp.Store(&oc)
	m.crls.Store(&cr)
}

func (m *issuers) ocspIssuers() []responder.Issuer { return *m.ocsp.Load() }
func (m *issuers) crlIssuers() []crl.SetIssuer     { return *m.crls.Load() }

// intermediates are the certificates of the issuers loaded: every one a
// leaf acmed serves may have been signed under.
func (m *issuers) intermediates() []*x509.Certificate {
	var out []*x509.Certificate
	for _, l := range m.rot.Set().All {
		out = append(out, l.Intermediate())
	}
	return out
}

// KnowsIssuerKeyID: authority.Issuers.
func (m *issuers) KnowsIssuerKeyID(aki []byte) bool {
	for _, l := range m.rot.Set().All {
		if bytes.Equal(l.Intermediate().SubjectKeyId, aki) {
			return true
		}
	}
	return false
}

// ListIssuers: authority.Issuers. It reads the store, so that it shows
// the set as every replica will have it.
func (m *issuers) ListIssuers(ctx context.Context) ([]authority.IssuerInfo, error) {
	set, err := m.store.Issuers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]authority.IssuerInfo, 0, len(set.Issuers))
	cur := m.rot.Set()
	for i := range set.Issuers {
		out = append(out, m.info(&set.Issuers[i], cur))
	}
	return out, nil
}

func (m *issuers) info(is *storage.Issuer, cur *ca.IssuerSet) authority.IssuerInfo {
	info := authority.IssuerInfo{
		Name: is.Name, State: is.State, Created: is.Created, Activated: is.Activated, Retired: is.Retired, By: is.By,
		Loaded: cur.Get(is.Name) != nil,
	}
	if m.crlBase != "" {
		info.CRL = ca.CRLURL(m.crlBase, is.Name)
	}
	switch {
	case is.Original:
		info.Key = "--data"
	case is.KeyLabel != "":
		info.Key = "pkcs11 label " + strconv.Quote(is.KeyLabel)
	case len(is.WrappedKey) > 0:
		info.Key = "store (wrapped)"
	}
	if cert, err := ca.ParseCertPEM(is.CertPEM); err == nil {
		info.Subject = cert.Subject.String()
		info.NotBefore, info.NotAfter = cert.NotBefore, cert.NotAfter
		info.Fingerprint = fingerprint(cert)
	}
	return info
}

// close releases the keys of the issuers loaded from a token.
func (m *issuers) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, li := range m.loaded {
		li.close()
	}
}
