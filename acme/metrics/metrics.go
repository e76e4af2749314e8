// Package metrics exposes acmed's Prometheus metrics: HTTP requests by
// route, the authority's outcomes (issuances, validations, jobs), the
// store's latency and errors, rate-limit refusals, and the certificate
// estate. Each Metrics has its own registry (no process-wide default
// registry: two servers in one test process must not share counters).
//
// github.com/prometheus/client_golang does the exposition format and the
// histograms; this package only decides what is counted, and resolves
// every label it can once, at start, so that the hot path pays a counter
// increment or a histogram observation and allocates nothing.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Namespace prefixes every acmed metric.
const Namespace = "acmed"

// Config wires Metrics. Everything is optional.
type Config struct {
	// Inventory answers the estate gauges at scrape time; nil: no estate
	// metrics (a store without an inventory).
	Inventory storage.Inventory
	// EstateCache is how long one count of the estate is served before
	// the store is asked again, so that a scrape storm (several
	// Prometheus servers, a dashboard refreshing) costs the store one
	// count per period; default 30s.
	EstateCache time.Duration
	// ExpiringWithin are the windows of acmed_certificates_expiring;
	// default 24h, 7d and 30d.
	ExpiringWithin []time.Duration
	// Jobs answers acmed_jobs_pending and acmed_jobs_oldest_age_seconds;
	// nil when the store cannot tell cheaply (then only this replica's
	// running jobs are shown).
	Jobs JobStats
	Now  func() time.Time // nil: time.Now
	// Logger receives scrape errors; nil: slog.Default().
	Logger *slog.Logger
	// Limits are the rate limits' names, so that each refusal counter
	// exists (at 0) before the first refusal.
	Limits []string
	// Profiles are the certificate profiles' names, likewise.
	Profiles []string
}

// JobStats is a store that can tell its queue's length and the age of
// its oldest job without scanning.
type JobStats interface {
	PendingJobs(ctx context.Context) (pending int64, oldest time.Time, err error)
}

// Metrics holds one server's collectors and their registry.
type Metrics struct {
	reg  *prometheus.Registry
	log  *slog.Logger
	now  func() time.Time
	http *httpMetrics

	issued      *prometheus.CounterVec
	validations *prometheus.CounterVec
	jobsRunning prometheus.Gauge
	refusals    *prometheus.CounterVec
	store       *storeMetrics
	alerts      *prometheus.CounterVec
	deliveries  *prometheus.CounterVec
}

// New builds the collectors and registers them, with the Go runtime's
// and the process's, on a registry of their own.
func New(cfg Config) *Metrics {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Metrics{reg: prometheus.NewRegistry(), log: cfg.Logger, now: cfg.Now}
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.http = newHTTPMetrics(m.reg)
	m.issued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "certificates_issued_total",
		Help: "Certificates issued (recorded in the store), by profile.",
	}, []string{"profile"})
	m.validations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "validations_total",
		Help: "Challenge validations, by challenge type and outcome (valid, invalid, not_performed: the validator had no capacity before the job's deadline and the job was handed back).",
	}, []string{"type", "outcome"})
	m.jobsRunning = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: Namespace, Name: "jobs_running",
		Help: "Validation and issuance jobs this replica is running.",
	})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "rate_limit_refusals_total",
		Help: "Requests refused by a rate limit, by the limit's name.",
	}, []string{"limit"})
	m.store = newStoreMetrics(m.reg, m.refusals)
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "alerts_raised_total",
		Help: "Expiry alerts this replica queued, by event (certificate.not_renewed, certificate.campaign_pending); each is raised once across replicas.",
	}, []string{"event"})
	m.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Name: "alert_deliveries_total",
		Help: "Alert webhook POSTs this replica made, by outcome (delivered: a 2xx answer; failed: retried later).",
	}, []string{"outcome"})
	m.reg.MustRegister(m.issued, m.validations, m.jobsRunning, m.refusals, m.alerts, m.deliveries)
	for _, ev := range []string{acme.AlertNotRenewed, acme.AlertCampaignPending} {
		m.alerts.WithLabelValues(ev)
	}
	for _, outcome := range []string{"delivered", "failed"} {
		m.deliveries.WithLabelValues(outcome)
	}
	for _, name := range cfg.Limits {
		m.refusals.WithLabelValues(name)
	}
	for _, name := range cfg.Profiles {
		m.issued.WithLabelValues(name)
	}
	for _, typ := range []acme.ChallengeType{acme.ChallengeHTTP01, acme.ChallengeDNS01, acme.ChallengeTLSALPN01} {
		for _, outcome := range []string{string(acme.StatusValid), string(acme.StatusInvalid)} {
			m.validations.WithLabelValues(string(typ), outcome)
		}
	}
	if cfg.Inventory != nil {
		m.reg.MustRegister(newEstate(cfg, m.log))
	}
	if cfg.Jobs != nil {
		m.reg.MustRegister(newJobStats(cfg))
	}
	return m
}

// Registry is the registry the collectors are on, for tests and for
// collectors of other packages.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition format. A
// collector that fails (the estate's count, when the store is down) is
// left out of that scrape and logged; the others are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelWarn),
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg, // promhttp's own counters of scrapes
		Timeout:           30 * time.Second,
		EnableOpenMetrics: true,
	})
}

// Issued implements authority.Metrics.
func (m *Metrics) Issued(profile string) { m.issued.WithLabelValues(profile).Inc() }

// Validated implements authority.Metrics.
func (m *Metrics) Validated(typ acme.ChallengeType, outcome string) {
	m.validations.WithLabelValues(string(typ), outcome).Inc()
}

// JobsRunning implements authority.Metrics.
func (m *Metrics) JobsRunning(delta int) { m.jobsRunning.Add(float64(delta)) }

// Queued implements alerts.Hooks.
func (m *Metrics) Queued(event string) { m.alerts.WithLabelValues(event).Inc() }

// Delivery implements alerts.Hooks.
func (m *Metrics) Delivery(outcome string) { m.deliveries.WithLabelValues(outcome).Inc() }

// Server is the --metrics-listen listener.
type Server struct {
	srv  *http.Server
	Addr net.Addr
}

// Serve serves /metrics on addr, plain HTTP, on its own listener (never
// the ACME one): Prometheus scrapes over the operator's network.
func (m *Metrics) Serve(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: time.Minute,
			ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)},
		Addr: ln.Addr(),
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.log.Error("metrics listener", "err", err)
		}
	}()
	m.log.Info("serving metrics", "url", s.URL())
	return s, nil
}

// URL is where the metrics are served; an unspecified listen address
// shows as localhost.
func (s *Server) URL() string {
	host, port, err := net.SplitHostPort(s.Addr.String())
	if err != nil {
		return "http://" + s.Addr.String() + "/metrics"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port) + "/metrics"
}

// Stop closes the listener; a scrape in flight is cut.
func (s *Server) Stop() {
	if s != nil {
		_ = s.srv.Close()
	}
}
