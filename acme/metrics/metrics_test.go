package metrics_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/metrics"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore opens a real embedded store in a temporary directory.
func openStore(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// count is the value of the series of family name with labels (name="v"
// pairs, as the exposition format writes them), from a scrape of m.
func count(t *testing.T, m *metrics.Metrics, name, labels string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			var pairs []string
			for _, l := range s.GetLabel() {
				pairs = append(pairs, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(pairs, ",") != labels {
				continue
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	t.Fatalf("no series %s{%s}", name, labels)
	return 0
}

func TestInstrumentRoutes(t *testing.T) {
	m := metrics.New(metrics.Config{Logger: quiet()})
	mux := http.NewServeMux()
	mux.Handle("/acme/order/", m.Instrument("/acme/order/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/missing") {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		_, _ = w.Write([]byte("{}")) // an implicit 200
	})))
	mux.Handle("/acme/new-order", m.Instrument("/acme/new-order", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
	})))
	mux.Handle("/", m.Instrument(metrics.RouteUnmatched, http.NotFoundHandler()))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	for _, path := range []string{"/acme/order/a1", "/acme/order/b2", "/acme/order/missing", "/acme/new-order", "/no/such/thing"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, tc := range []struct {
		name, labels string
		want         float64
	}{
		{"acmed_http_requests_total", `code="200",route="/acme/order/{id}"`, 2},
		{"acmed_http_requests_total", `code="404",route="/acme/order/{id}"`, 1},
		{"acmed_http_requests_total", `code="201",route="/acme/new-order"`, 1},
		{"acmed_http_requests_total", `code="404",route="unmatched"`, 1},
		{"acmed_http_request_duration_seconds", `route="/acme/order/{id}"`, 3},
		{"acmed_http_request_duration_seconds", `route="unmatched"`, 1},
	} {
		if got := count(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
}

// nopWriter is a ResponseWriter that allocates nothing.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// The hot path: once a route's status code has been seen, a request costs
// the metrics no allocation.
func TestInstrumentAllocatesNothing(t *testing.T) {
	m := metrics.New(metrics.Config{Logger: quiet()})
	h := m.Instrument("/acme/new-nonce", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	w, r := nopWriter{h: http.Header{}}, httptest.NewRequest(http.MethodGet, "/acme/new-nonce", nil)
	h.ServeHTTP(w, r)
	if n := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Errorf("an instrumented request allocates %v times, want 0", n)
	}
	// A store call: the measured one allocates what the backend does.
	raw := openStore(t)
	s, ctx := m.InstrumentStore(raw), context.Background()
	bare := testing.AllocsPerRun(200, func() { _, _ = raw.Order(ctx, "nope") })
	if n := testing.AllocsPerRun(200, func() { _, _ = s.Order(ctx, "nope") }); n > bare {
		t.Errorf("a measured store call allocates %v times, the backend alone %v", n, bare)
	}
}

// The measured store keeps every method of the backend reachable by type
// assertion (the authority finds backups, the inventory and leases so),
// times what the hot path calls, and counts only failures as errors.
func TestInstrumentStore(t *testing.T) {
	m := metrics.New(metrics.Config{Logger: quiet()})
	raw := openStore(t)
	s := m.InstrumentStore(raw)
	if _, ok := s.(storage.Limiter); !ok {
		t.Error("the measured store is no storage.Limiter")
	}
	if _, ok := s.(interface {
		Backup(context.Context, func(int64) (io.Writer, error)) (int64, error)
	}); !ok {
		t.Error("the measured embedded store lost Backup")
	}
	ctx := context.Background()
	if _, err := s.Order(ctx, "no-such-order"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Order: %v, want not found", err)
	}
	acct := &acme.Account{ID: "acct1", KeyThumbprint: "tp1", Status: acme.StatusValid, CreatedAt: time.Now()}
	if err := s.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAccount(ctx, &acme.Account{ID: "acct2", KeyThumbprint: "tp1", Status: acme.StatusValid}); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateAccount with a taken key: %v, want conflict", err)
	}
	if got := count(t, m, "acmed_store_operation_duration_seconds", `op="order"`); got != 1 {
		t.Errorf("order operations timed: %v, want 1", got)
	}
	if got := count(t, m, "acmed_store_operation_duration_seconds", `op="create_account"`); got != 2 {
		t.Errorf("create_account operations timed: %v, want 2", got)
	}
	for _, op := range []string{"order", "create_account"} {
		if got := count(t, m, "acmed_store_errors_total", `op="`+op+`"`); got != 0 {
			t.Errorf("%s errors: %v, want 0 (not found and conflict are answers)", op, got)
		}
	}
	raw.Close() // a real failure: the file is closed
	if _, err := s.Account(ctx, "acct1"); err == nil {
		t.Fatal("Account on a closed store succeeded")
	}
	if got := count(t, m, "acmed_store_errors_total", `op="account"`); got != 1 {
		t.Errorf("account errors after the store closed: %v, want 1", got)
	}
}

func TestRateLimitRefusals(t *testing.T) {
	m := metrics.New(metrics.Config{Logger: quiet(), Limits: []string{"new-accounts-per-ip"}})
	s := m.InstrumentStore(openStore(t)).(storage.Limiter)
	if got := count(t, m, "acmed_rate_limit_refusals_total", `limit="new-accounts-per-ip"`); got != 0 {
		t.Fatalf("refusals before any: %v", got)
	}
	check := []storage.LimitCheck{{Name: "new-accounts-per-ip", Key: "ip:192.0.2.1", Limit: storage.Limit{Count: 1, Period: time.Hour}, Cost: 1}}
	now := time.Now()
	for i, want := range []bool{true, false, false} {
		d, err := s.Limit(context.Background(), now, check)
		if err != nil || d.Allowed != want {
			t.Fatalf("request %d: %+v, %v; want allowed %v", i, d, err, want)
		}
	}
	if got := count(t, m, "acmed_rate_limit_refusals_total", `limit="new-accounts-per-ip"`); got != 2 {
		t.Errorf("refusals: %v, want 2", got)
	}
}

func TestAuthorityHooks(t *testing.T) {
	m := metrics.New(metrics.Config{Logger: quiet(), Profiles: []string{"mtls", "shortlived"}})
	m.Issued("shortlived")
	m.Validated(acme.ChallengeDNS01, "invalid")
	m.Validated(acme.ChallengeDNS01, "not_performed")
	m.JobsRunning(2)
	m.JobsRunning(-1)
	for _, tc := range []struct {
		name, labels string
		want         float64
	}{
		{"acmed_certificates_issued_total", `profile="mtls"`, 0},
		{"acmed_certificates_issued_total", `profile="shortlived"`, 1},
		{"acmed_validations_total", `outcome="invalid",type="dns-01"`, 1},
		{"acmed_validations_total", `outcome="not_performed",type="dns-01"`, 1},
		{"acmed_validations_total", `outcome="valid",type="http-01"`, 0},
		{"acmed_jobs_running", ``, 1},
	} {
		if got := count(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := testutil.CollectAndCount(m.Registry(), "acmed_certificates"); got != 0 {
		t.Errorf("estate series without an inventory: %d, want none", got)
	}
}

func TestWindowLabel(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "24h"},
		{7 * 24 * time.Hour, "7d"},
		{30 * 24 * time.Hour, "30d"},
		{36 * time.Hour, "36h"},
		{90 * time.Minute, "90m"},
		{1500 * time.Millisecond, "1.5s"},
	} {
		if got := metrics.WindowLabel(tc.d); got != tc.want {
			t.Errorf("WindowLabel(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// On a real Redis too, the measured store keeps the backend's methods and
// times its operations.
func TestInstrumentRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	raw, err := redis.Open(t.Context(), srv.URL, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	m := metrics.New(metrics.Config{Logger: quiet()})
	s := m.InstrumentStore(raw)
	if _, ok := s.(storage.Limiter); !ok {
		t.Error("the measured Redis store is no storage.Limiter")
	}
	if _, isInv := any(raw).(storage.Inventory); isInv {
		if _, ok := s.(storage.Inventory); !ok {
			t.Error("the measured Redis store lost its inventory")
		}
	}
	if _, err := s.Order(t.Context(), "acct.none"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Order: %v, want not found", err)
	}
	if got := count(t, m, "acmed_store_operation_duration_seconds", `op="order"`); got != 1 {
		t.Errorf("order operations timed: %v, want 1", got)
	}
}
