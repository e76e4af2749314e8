// Package crl publishes acmed's certificate revocation lists (RFC 5280
// §5): one per issuing CA, listing the certificates revoked and not long
// expired, at {base}/crl/{issuer}.crl, the URL every certificate names in
// its CRL distribution points.
//
// One replica at a time (a store lease) builds: when a revocation on any
// replica changed the store's revocation revision (within Refresh), at
// half of Validity (so relying parties always hold an unexpired CRL),
// and when there is none or it names another URL. It takes the CRL
// number from the store, where it only grows, lists the revoked
// certificates from the inventory, signs, and stores the CRL if no newer
// one was stored meanwhile. Every replica serves the latest CRL in the
// store, cached in memory and checked again at most every Poll.
//
// Sharding is not done: one CRL per issuer lists every revoked
// certificate (100,000 entries are about 4 MB).
package crl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// Store is what publishing CRLs needs of the store.
type Store interface {
	storage.CRLs
	storage.Inventory
	storage.Leases
}

// Issuer signs the CRLs of one issuing CA (ca.Local).
type Issuer interface {
	CRLName() string
	SignCRL(ctx context.Context, req ca.CRLRequest) ([]byte, error)
}

// LeaseName is the store lease of the replica that builds CRLs.
const LeaseName = "crl-build"

const (
	// Backdate is how far a CRL's thisUpdate lies before it was built,
	// so that a relying party whose clock runs a little behind does not
	// find it "not yet valid".
	Backdate = time.Minute
	// pageSize is how many revoked certificates one inventory call lists.
	pageSize = 1000
	// maxPoll bounds how stale a replica's view of the store may be.
	maxPoll = 5 * time.Second
)

// Config wires a Publisher. Zero durations take the defaults below.
type Config struct {
	Store Store
	// Issuer is the issuing CA. A store serves one CA (storage.CAs);
	// every revoked certificate in it is this issuer's unless Issued
	// says otherwise.
	Issuer Issuer
	// Issued reports whether a certificate is Issuer's, when the CA has
	// rotated and the store holds several issuers' certificates; nil:
	// every one is.
	Issued func(c *acme.Certificate) bool
	// BaseURL is where CRLs are published: the CRL of issuer NAME is at
	// BaseURL/crl/NAME.crl (URL). Required.
	BaseURL string
	// Validity is nextUpdate - thisUpdate (Backdate aside); default 24h.
	// A CRL is rebuilt once half of it has passed.
	Validity time.Duration
	// Refresh bounds the time from a revocation, on any replica, to a
	// CRL that lists it being served by every replica; default 1m.
	Refresh time.Duration
	// Poll is how often a replica looks at the store for a newer CRL,
	// and the builder for revocations; default Refresh/4, at most 5s.
	Poll time.Duration
	// Holder names this replica in the lease: unique per process.
	Holder string
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: slog.Default()
}

// URL is the CRL distribution point of issuer's CRL under base.
func URL(base, issuer string) string {
	return ca.CRLURL(base, issuer)
}

// Publisher builds and serves CRLs. It is safe for concurrent use.
type Publisher struct {
	cfg  Config
	log  *slog.Logger
	name string // the issuer's CRLName
	dp   string // URL(BaseURL, name)
	ttl  time.Duration

	mu      sync.Mutex // held while the store is read for a newer CRL
	latest  atomic.Pointer[storage.CRL]
	checked atomic.Int64 // Unix ns of the last look at the store
	// buildMu makes builds of this replica one at a time, and guards
	// builtAt: when it last built, so that revocations trigger at most
	// one build per Refresh/2.
	buildMu sync.Mutex
	builtAt time.Time
}

// New checks cfg and returns a Publisher.
func New(cfg Config) (*Publisher, error) {
	if cfg.Store == nil || cfg.Issuer == nil || cfg.Holder == "" || cfg.BaseURL == "" {
		return nil, errors.New("crl: Store, Issuer, Holder and BaseURL are required")
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 24 * time.Hour
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = time.Minute
	}
	if cfg.Poll <= 0 {
		cfg.Poll = min(cfg.Refresh/4, maxPoll)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	name := cfg.Issuer.CRLName()
	p := &Publisher{cfg: cfg, log: cfg.Logger, name: name, dp: URL(cfg.BaseURL, name),
		// Long enough for a large build to finish under one lease; a
		// builder that dies is replaced after it.
		ttl: max(3*cfg.Poll, 30*time.Second)}
	return p, nil
}

// Issuer is the name of the issuer's CRL (ca.CRLName).
func (p *Publisher) Issuer() string { return p.name }

// DistributionPoint is the URL certificates name as their CRL
// distribution point.
func (p *Publisher) DistributionPoint() string { return p.dp }

// Run builds CRLs while this replica holds the lease, looking every
// Poll, until ctx ends. Store failures are logged and tried again.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.Poll)
	defer t.Stop()
	for {
		if err := p.Pass(ctx); err != nil && ctx.Err() == nil {
			p.log.ErrorContext(ctx, "CRL", "issuer", p.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pass is one tick: take or keep the lease, and build if the stored CRL
// is missing, stale or lacks a revocation.
func (p *Publisher) Pass(ctx context.Context) error {
	held, err := p.cfg.Store.TryLease(ctx, LeaseName, p.cfg.Holder, p.ttl)
	if err != nil {
		return fmt.Errorf("crl: lease %s: %w", LeaseName, err)
	}
	p.buildMu.Lock()
	defer p.buildMu.Unlock()
	if !held {
		p.builtAt = time.Time{}
		return nil
	}
	cur, err := p.refresh(ctx, true)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	rev, err := p.cfg.Store.RevocationRevision(ctx)
	if err != nil {
		return fmt.Errorf("crl: revocation revision: %w", err)
	}
	now := p.cfg.Now()
	if why := p.due(cur, rev, now); why != "" {
		_, err := p.build(ctx, why)
		return err
	}
	return nil
}

// due says why a CRL must be built now, "" if it need not.
func (p *Publisher) due(cur *storage.CRL, rev uint64, now time.Time) string {
	switch {
	case cur == nil:
		return "none stored"
	case cur.DistributionPoint != p.dp:
		return "distribution point changed"
	case !now.Before(cur.ThisUpdate.Add(Backdate + p.cfg.Validity/2)):
		return "half of its validity passed"
	case cur.Revision != rev && !now.Before(p.builtAt.Add(p.cfg.Refresh/2)):
		return "revocations since"
	}
	return ""
}

// Build builds, signs and stores a CRL now, and returns it as stored:
// the one built, or a newer one another replica stored meanwhile.
func (p *Publisher) Build(ctx context.Context, why string) (*storage.CRL, error) {
	p.buildMu.Lock()
	defer p.buildMu.Unlock()
	return p.build(ctx, why)
}

func (p *Publisher) build(ctx context.Context, why string) (*storage.CRL, error) {
	start := p.cfg.Now()
	p.builtAt = start
	now := start.Truncate(time.Second) // X.509 times are whole seconds
	// The revision and the number are taken before the listing: a
	// revocation after this point is caught by the next build, and a
	// higher number is always a later look at the store.
	rev, err := p.cfg.Store.RevocationRevision(ctx)
	if err != nil {
		return nil, fmt.Errorf("crl: revocation revision: %w", err)
	}
	number, err := p.cfg.Store.NextCRLNumber(ctx, p.name, uint64(max(now.Unix(), 1)))
	if err != nil {
		return nil, fmt.Errorf("crl: CRL number: %w", err)
	}
	entries, err := p.entries(ctx, now)
	if err != nil {
		return nil, err
	}
	req := ca.CRLRequest{
		Number:     new(big.Int).SetUint64(number),
		ThisUpdate: now.Add(-Backdate), NextUpdate: now.Add(p.cfg.Validity),
		Entries: entries, DistributionPoint: p.dp,
	}
	der, err := p.cfg.Issuer.SignCRL(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("crl: sign: %w", err)
	}
	c := &storage.CRL{Issuer: p.name, Number: number, Revision: rev, DistributionPoint: p.dp,
		ThisUpdate: req.ThisUpdate, NextUpdate: req.NextUpdate, Entries: len(entries), DER: der}
	stored, err := p.cfg.Store.PutCRL(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("crl: store: %w", err)
	}
	if !stored {
		p.log.InfoContext(ctx, "CRL: a newer one was stored meanwhile", "issuer", p.name, "number", number)
		return p.refresh(ctx, true)
	}
	p.latest.Store(c)
	p.checked.Store(p.cfg.Now().UnixNano())
	p.log.InfoContext(ctx, "CRL built", "issuer", p.name, "number", number, "entries", len(entries),
		"bytes", len(der), "took", p.cfg.Now().Sub(start).Round(time.Millisecond), "why", why)
	return c, nil
}

// entries lists the revoked certificates the CRL built at now carries:
// all but those expired more than Validity before now. RFC 5280 §3.3
// keeps an entry until it has been on one regularly scheduled CRL issued
// after the certificate expired; a CRL is built at least every
// Validity/2, so one such CRL is built within Validity of the expiry,
// even if one build is missed.
func (p *Publisher) entries(ctx context.Context, now time.Time) ([]ca.CRLEntry, error) {
	var out []ca.CRLEntry
	f := storage.CertFilter{Now: now, Status: acme.CertRevoked}
	keepAfter := now.Add(-p.cfg.Validity)
	for cursor := ""; ; {
		certs, next, err := p.cfg.Store.ListCertificates(ctx, f, cursor, pageSize)
		if err != nil {
			return nil, fmt.Errorf("crl: list revoked certificates: %w", err)
		}
		for _, c := range certs {
			if !c.NotAfter.After(keepAfter) || p.cfg.Issued != nil && !p.cfg.Issued(c) {
				continue
			}
			serial, ok := new(big.Int).SetString(c.Serial, 16)
			if !ok || serial.Sign() <= 0 {
				p.log.ErrorContext(ctx, "CRL: certificate with a malformed serial left out", "serial", c.Serial)
				continue
			}
			out = append(out, ca.CRLEntry{Serial: serial, RevokedAt: c.RevokedAt, Reason: c.Reason})
		}
		if cursor = next; cursor == "" {
			return out, nil
		}
	}
}

// CRL returns the latest CRL of the issuer named issuer, as stored: from
// memory if the store was looked at less than Poll ago. An unknown
// issuer is a not-found problem; none built yet, a 503 problem.
func (p *Publisher) CRL(ctx context.Context, issuer string) (*storage.CRL, error) {
	if issuer != p.name {
		return nil, acme.NotFound("no CRL for issuer %q; this server's is %s", issuer, p.dp)
	}
	c, err := p.refresh(ctx, false)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, retryLater(acme.Unavailable("the CRL is being built; retry shortly"), p.cfg.Poll)
	case err != nil && c != nil:
		// The last one read is still the best answer a relying
		// party can get.
		p.log.WarnContext(ctx, "CRL: serving the last one read; the store failed", "issuer", p.name, "err", err)
		return c, nil
	}
	return c, err
}

func retryLater(prob *acme.Problem, after time.Duration) *acme.Problem {
	prob.RetryAfter = max(after, time.Second)
	return prob
}

// CacheFor is how long an HTTP cache may keep c: until its nextUpdate,
// but no longer than Refresh, so that a cache never hides a revocation
// longer than acmed itself would; and how long it may serve c while
// acmed cannot answer: until its nextUpdate, when relying parties stop
// accepting it anyway.
func (p *Publisher) CacheFor(c *storage.CRL) (maxAge, staleIfError time.Duration) {
	left := max(c.NextUpdate.Sub(p.cfg.Now()), 0)
	return min(left, p.cfg.Refresh), left
}

// refresh returns the latest CRL, reading the store if it was not looked
// at for Poll (or force): the number first, the CRL only when it
// changed. It returns the CRL held, if any, with an error reading.
func (p *Publisher) refresh(ctx context.Context, force bool) (*storage.CRL, error) {
	fresh := func() bool {
		return !force && p.latest.Load() != nil && p.cfg.Now().UnixNano()-p.checked.Load() < int64(p.cfg.Poll)
	}
	if fresh() {
		return p.latest.Load(), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if fresh() { // another request looked while this one waited
		return p.latest.Load(), nil
	}
	held := p.latest.Load()
	if held != nil {
		// Also when the store fails: what is held is served, and the
		// store asked again only after Poll, not on every request.
		defer p.checked.Store(p.cfg.Now().UnixNano())
	}
	n, err := p.cfg.Store.LatestCRLNumber(ctx, p.name)
	if err != nil {
		return held, fmt.Errorf("crl: latest CRL number: %w", err)
	}
	switch {
	case n == 0 && held == nil:
		return nil, fmt.Errorf("crl: %w: no CRL of %s yet", storage.ErrNotFound, p.name)
	case n != 0 && (held == nil || n != held.Number):
		c, err := p.cfg.Store.LatestCRL(ctx, p.name)
		if err != nil {
			return held, fmt.Errorf("crl: latest CRL: %w", err)
		}
		p.latest.Store(c)
		held = c
	}
	p.checked.Store(p.cfg.Now().UnixNano())
	return held, nil
}
