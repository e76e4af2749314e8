package crl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Set publishes the CRLs of a CA with several issuers (a rotated CA's
// active and retired intermediates): a Publisher each, under the one
// build lease. The issuers are read from Issuers at every tick, so a
// rotation on any replica gets its CRL without a restart. Safe for
// concurrent use.
type Set struct {
	cfg     Config // Issuer and Issued unset: each publisher has its own
	issuers func() []SetIssuer

	mu   sync.Mutex
	pubs map[string]*Publisher // by issuer name
}

// SetIssuer is one issuer of a Set.
type SetIssuer struct {
	Issuer Issuer
	// Issued tells its certificates from the other issuers' (see
	// Config.Issued).
	Issued func(c *acme.Certificate) bool
}

// NewSet checks cfg as New does (but Issuer) and returns a Set over the
// issuers issuers returns.
func NewSet(cfg Config, issuers func() []SetIssuer) (*Set, error) {
	if issuers == nil {
		return nil, errors.New("crl: a Set needs its issuers")
	}
	s := &Set{cfg: cfg, issuers: issuers, pubs: map[string]*Publisher{}}
	if _, err := s.publishers(); err != nil {
		return nil, err
	}
	return s, nil
}

// publishers syncs the publishers with the issuers, keeping those it had
// (their cached CRLs with them), and returns them.
func (s *Set) publishers() ([]*Publisher, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Publisher
	seen := map[string]bool{}
	for _, is := range s.issuers() {
		name := is.Issuer.CRLName()
		seen[name] = true
		p := s.pubs[name]
		if p == nil {
			cfg := s.cfg
			cfg.Issuer, cfg.Issued = is.Issuer, is.Issued
			var err error
			if p, err = New(cfg); err != nil {
				return nil, err
			}
			s.pubs[name] = p
		}
		out = append(out, p)
	}
	for name := range s.pubs {
		if !seen[name] {
			delete(s.pubs, name)
		}
	}
	return out, nil
}

// Publisher is the publisher of the issuer named name, nil if none.
func (s *Set) Publisher(name string) *Publisher {
	if _, err := s.publishers(); err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pubs[name]
}

// Run builds every issuer's CRLs while this replica holds the lease,
// looking every Poll, until ctx ends.
func (s *Set) Run(ctx context.Context) error {
	refresh, poll := s.cfg.Refresh, s.cfg.Poll
	if refresh <= 0 {
		refresh = time.Minute // New's default
	}
	if poll <= 0 {
		poll = min(refresh/4, maxPoll)
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		pubs, err := s.publishers()
		if err != nil && ctx.Err() == nil {
			s.logError(ctx, "", err)
		}
		for _, p := range pubs {
			if err := p.Pass(ctx); err != nil && ctx.Err() == nil {
				s.logError(ctx, p.name, err)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Set) logError(ctx context.Context, issuer string, err error) {
	log := s.cfg.Logger
	if log == nil {
		return
	}
	log.ErrorContext(ctx, "CRL", "issuer", issuer, "err", err)
}

// CRL returns the latest CRL of the issuer named issuer (Publisher.CRL);
// an issuer the set lacks is a not-found problem.
func (s *Set) CRL(ctx context.Context, issuer string) (*storage.CRL, error) {
	p := s.Publisher(issuer)
	if p == nil {
		return nil, acme.NotFound("no CRL for issuer %q", issuer)
	}
	return p.CRL(ctx, issuer)
}

// CacheFor is Publisher.CacheFor, the same for every issuer.
func (s *Set) CacheFor(c *storage.CRL) (maxAge, staleIfError time.Duration) {
	if p := s.Publisher(c.Issuer); p != nil {
		return p.CacheFor(c)
	}
	return 0, 0
}

// DistributionPoint is the URL of the issuer named name's CRL.
func (s *Set) DistributionPoint(name string) string { return URL(s.cfg.BaseURL, name) }

// Build builds the CRL of the issuer named name now (Publisher.Build).
func (s *Set) Build(ctx context.Context, name, why string) (*storage.CRL, error) {
	p := s.Publisher(name)
	if p == nil {
		return nil, fmt.Errorf("crl: no issuer %q", name)
	}
	return p.Build(ctx, why)
}
