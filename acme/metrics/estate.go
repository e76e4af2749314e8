package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acmed/acmed/storage"
)

// estate is the certificate estate, counted at scrape time from the
// store's inventory (storage.Inventory.CountCertificates, index counts,
// never a scan) and served from a cache for EstateCache: however many
// scrapes come in, the store counts once per period.
type estate struct {
	inv     storage.Inventory
	within  []time.Duration
	labels  []string
	ttl     time.Duration
	now     func() time.Time
	log     *slog.Logger
	certs   *prometheus.Desc
	expire  *prometheus.Desc
	renew   *prometheus.Desc
	mu      sync.Mutex // held while counting: concurrent scrapes wait for one count
	counted time.Time
	counts  storage.CertCounts
	err     error
}

// DefaultExpiringWithin are acmed_certificates_expiring's windows.
func DefaultExpiringWithin() []time.Duration {
	return []time.Duration{24 * time.Hour, 7 * 24 * time.Hour, 30 * 24 * time.Hour}
}

func newEstate(cfg Config, log *slog.Logger) *estate {
	within := cfg.ExpiringWithin
	if len(within) == 0 {
		within = DefaultExpiringWithin()
	}
	ttl := cfg.EstateCache
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	e := &estate{inv: cfg.Inventory, within: within, ttl: ttl, now: cfg.Now, log: log,
		certs: prometheus.NewDesc(Namespace+"_certificates", "Certificates in the inventory, by status (valid, revoked, expired; expired ones are kept for --retention).", []string{"status"}, nil),
		expire: prometheus.NewDesc(Namespace+"_certificates_expiring",
			"Valid certificates whose notAfter is within the window from now, by window (e.g. 24h, 7d).", []string{"within"}, nil),
		renew: prometheus.NewDesc(Namespace+"_certificates_not_renewed",
			"Valid certificates past the start of their renewal window (a campaign's included) and not replaced.", nil, nil),
	}
	for _, d := range within {
		e.labels = append(e.labels, WindowLabel(d))
	}
	return e
}

// WindowLabel writes a window as the within label shows it: whole days as
// "7d", else Go's duration ("24h", "90m").
func WindowLabel(d time.Duration) string {
	day := 24 * time.Hour
	switch {
	case d >= day && d%day == 0 && d != day:
		return fmt.Sprintf("%dd", d/day)
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

func (e *estate) Describe(ch chan<- *prometheus.Desc) {
	ch <- e.certs
	ch <- e.expire
	ch <- e.renew
}

func (e *estate) Collect(ch chan<- prometheus.Metric) {
	counts, err := e.count()
	if err != nil {
		// The scrape goes on without the estate (promhttp's
		// ContinueOnError), and says why in acmed's log.
		ch <- prometheus.NewInvalidMetric(e.certs, err)
		return
	}
	for status, n := range map[string]int64{"valid": counts.Valid, "revoked": counts.Revoked, "expired": counts.Expired} {
		ch <- prometheus.MustNewConstMetric(e.certs, prometheus.GaugeValue, float64(n), status)
	}
	for i, d := range e.within {
		ch <- prometheus.MustNewConstMetric(e.expire, prometheus.GaugeValue, float64(counts.Expiring[d]), e.labels[i])
	}
	ch <- prometheus.MustNewConstMetric(e.renew, prometheus.GaugeValue, float64(counts.NotRenewed))
}

// count returns the cached counts, counting afresh once they are older
// than the cache period. A failure is cached as well, so that a store
// that is down is not asked by every scrape.
func (e *estate) count() (storage.CertCounts, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	if !e.counted.IsZero() && now.Sub(e.counted) < e.ttl && now.Sub(e.counted) >= 0 {
		return e.counts, e.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.counts, e.err = e.inv.CountCertificates(ctx, now, e.within)
	if e.err != nil {
		e.err = fmt.Errorf("counting the certificate estate: %w", e.err)
		e.log.Warn("metrics: estate not counted", "err", e.err)
	}
	e.counted = now
	return e.counts, e.err
}

// jobStats serves the store's queue length and oldest job's age.
type jobStats struct {
	src     JobStats
	now     func() time.Time
	pending *prometheus.Desc
	oldest  *prometheus.Desc
}

func newJobStats(cfg Config) *jobStats {
	return &jobStats{src: cfg.Jobs, now: cfg.Now,
		pending: prometheus.NewDesc(Namespace+"_jobs_pending", "Validation and issuance jobs in the store's queue, on every replica.", nil, nil),
		oldest:  prometheus.NewDesc(Namespace+"_jobs_oldest_age_seconds", "Age of the oldest job in the store's queue; 0 when it is empty.", nil, nil),
	}
}

func (j *jobStats) Describe(ch chan<- *prometheus.Desc) { ch <- j.pending; ch <- j.oldest }

func (j *jobStats) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, oldest, err := j.src.PendingJobs(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(j.pending, fmt.Errorf("counting jobs: %w", err))
		return
	}
	age := 0.0
	if n > 0 && !oldest.IsZero() {
		age = max(0, j.now().Sub(oldest).Seconds())
	}
	ch <- prometheus.MustNewConstMetric(j.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(j.oldest, prometheus.GaugeValue, age)
}
