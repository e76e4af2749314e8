// Package alerts tells operators about certificates that are about to
// cause an outage: one past its renewal window and not replaced (its
// client did not renew in time), and one an early-renewal campaign moved
// that is still not replaced after the campaign's grace period. One
// replica at a time (a lease in the store) scans the inventory, queues
// each event once per certificate in the store's outbox, and POSTs it as
// JSON to every webhook, retrying with exponential backoff until the
// webhook answers 2xx: an alert is never dropped, and is sent once.
package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/acmed/acmed/storage"
)

// Store is what alerting needs of the store.
type Store interface {
	storage.Certificates
	storage.Inventory
	storage.Campaigns
	storage.Leases
	storage.AlertOutbox
}

// LeaseName is the store lease of the replica that scans and delivers.
const LeaseName = "expiry-scan"

// Config wires an Alerter. Zero durations take the defaults below.
type Config struct {
	Store    Store
	Webhooks []string
	// Holder names this replica in the lease: unique per process.
	Holder string
	// Interval is how often the inventory is scanned; default 5m. The
	// lease lasts 3 intervals, so a replica that dies is replaced after
	// at most that long.
	Interval time.Duration
	// CampaignGrace is how long after a campaign's window has closed its
	// certificates not yet replaced are alerted about; default 1h.
	CampaignGrace time.Duration
	// Timeout bounds one webhook POST; default 10s.
	Timeout time.Duration
	// RetryMin is the wait after a delivery's first failure, doubled on
	// each further one up to RetryMax; defaults 30s and 1h. Due
	// deliveries are looked for every RetryMin (or Interval, if shorter).
	RetryMin, RetryMax time.Duration
	// Client sends the webhooks; nil: one with no proxy but the
	// environment's, and Timeout.
	Client *http.Client
	Now    func() time.Time // nil: time.Now
	Logger *slog.Logger     // nil: slog.Default()
	// Hooks, when set, count what happens (package metrics).
	Hooks Hooks
}

// Hooks receive counts for monitoring; each may be called concurrently.
type Hooks interface {
	// Queued is one alert recorded for delivery, by event.
	Queued(event string)
	// Delivery is one POST's outcome: "delivered" or "failed".
	Delivery(outcome string)
}

// Alerter scans and delivers.
type Alerter struct {
	cfg Config
	log *slog.Logger
	ttl time.Duration
	// seen is the alerts queued (or found queued) by this replica's last
	// scan, keyed by event and serial, so that the next scan does not ask
	// the store again about each one; forgotten when the lease is lost.
	seen     map[string]struct{}
	lastScan time.Time
}

// New checks cfg and returns an Alerter.
func New(cfg Config) (*Alerter, error) {
	if cfg.Store == nil || cfg.Holder == "" {
		return nil, errors.New("alerts: Store and Holder are required")
	}
	setDefault(&cfg.Interval, 5*time.Minute)
	setDefault(&cfg.CampaignGrace, time.Hour)
	setDefault(&cfg.Timeout, 10*time.Second)
	setDefault(&cfg.RetryMin, 30*time.Second)
	setDefault(&cfg.RetryMax, time.Hour)
	cfg.RetryMax = max(cfg.RetryMax, cfg.RetryMin)
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: cfg.Timeout}
	}
	for _, u := range cfg.Webhooks {
		if err := CheckURL(u); err != nil {
			return nil, err
		}
	}
	// The lease outlives a webhook's timeout several times over, so that
	// a POST in flight ends before another replica could take over.
	ttl := max(3*cfg.Interval, 3*cfg.Timeout)
	return &Alerter{cfg: cfg, log: cfg.Logger, ttl: ttl}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Run scans every Interval and delivers what is due every RetryMin, while
// this replica holds the lease, until ctx ends. Store failures are logged
// and tried again at the next tick.
func (a *Alerter) Run(ctx context.Context) error {
	tick := min(a.cfg.Interval, a.cfg.RetryMin)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		if err := a.Pass(ctx); err != nil && ctx.Err() == nil {
			a.log.ErrorContext(ctx, "expiry alerts", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pass is one tick: take or keep the lease; scan if the last scan is an
// Interval old; deliver what is due. A replica without the lease does
// nothing.
func (a *Alerter) Pass(ctx context.Context) error {
	held, err := a.lease(ctx)
	if err != nil || !held {
		return err
	}
	now := a.cfg.Now()
	if a.lastScan.IsZero() || now.Sub(a.lastScan) >= a.cfg.Interval || now.Before(a.lastScan) {
		if err := a.scan(ctx, now); err != nil {
			return err
		}
		a.lastScan = now
	}
	return a.deliver(ctx)
}

// lease takes or extends the lease; losing it forgets what the last scan
// saw, as another replica may have changed the outbox since.
func (a *Alerter) lease(ctx context.Context) (bool, error) {
	held, err := a.cfg.Store.TryLease(ctx, LeaseName, a.cfg.Holder, a.ttl)
	if err != nil {
		return false, fmt.Errorf("alerts: lease %s: %w", LeaseName, err)
	}
	if !held && a.seen != nil {
		a.seen, a.lastScan = nil, time.Time{}
		a.log.InfoContext(ctx, "expiry alerts: another replica holds the lease", "lease", LeaseName)
	}
	return held, nil
}
