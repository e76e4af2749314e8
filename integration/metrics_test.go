package integration

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestMetrics scrapes a real acmed's --metrics-listen after an issuance
// and a rate-limit refusal: every family is there with its labels, routes
// are the mux's templates (never an order's ID), and the estate counts
// the certificate.
func TestMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dns := challengetest.StartDNS(t)
	h := challengetest.StartHTTP01(t)
	s := startAcmed(t, t.TempDir(), "--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port),
		"--metrics-listen", "127.0.0.1:0", "--rate-limit", "new-orders-per-account=1/1h")
	if s.MetricsURL == "" {
		t.Fatal("acmed printed no metrics URL")
	}
	c := newAccount(t, ctx, s)
	issue(t, ctx, c, h, "metrics.example.test")
	// Answered at once: x/crypto/acme would wait out the Retry-After.
	c.RetryBackoff = func(int, *http.Request, *http.Response) time.Duration { return -1 }
	var ae *acme.Error
	if _, err := c.AuthorizeOrder(ctx, acme.DomainIDs("second.example.test")); err == nil || !errors.As(err, &ae) || ae.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a second order in the hour: %v, want 429", err)
	}

	fams := scrape(t, s.MetricsURL)
	// A store without an inventory (before the estate) has no estate
	// gauges, and says so at start.
	inventory := !strings.Contains(s.ReadLog(), "keeps no certificate inventory")
	for _, tc := range []struct {
		family string
		labels map[string]string
		want   float64 // -1: any value, the series must exist
	}{
		{"acmed_http_requests_total", map[string]string{"route": "/acme/new-order", "code": "201"}, 1},
		{"acmed_http_requests_total", map[string]string{"route": "/acme/new-order", "code": "429"}, 1},
		{"acmed_http_requests_total", map[string]string{"route": "/acme/order/{id}/finalize", "code": "200"}, 1},
		{"acmed_http_requests_total", map[string]string{"route": "/directory", "code": "200"}, -1},
		{"acmed_http_request_duration_seconds", map[string]string{"route": "/acme/chall/{authz}/{id}"}, -1},
		{"acmed_certificates_issued_total", map[string]string{"profile": "mtls"}, 1},
		{"acmed_certificates_issued_total", map[string]string{"profile": "shortlived"}, 0},
		{"acmed_validations_total", map[string]string{"type": "http-01", "outcome": "valid"}, 1},
		{"acmed_rate_limit_refusals_total", map[string]string{"limit": "new-orders-per-account"}, 1},
		{"acmed_rate_limit_refusals_total", map[string]string{"limit": "new-accounts-per-ip"}, 0},
		{"acmed_store_operation_duration_seconds", map[string]string{"op": "create_order"}, 2},
		{"acmed_store_operation_duration_seconds", map[string]string{"op": "consume_nonce_for_account"}, -1},
		{"acmed_store_errors_total", map[string]string{"op": "create_order"}, 0},
		{"acmed_jobs_running", nil, 0},
		{"acmed_jobs_pending", nil, 0}, // the issuance finished its jobs
		{"acmed_jobs_oldest_age_seconds", nil, 0},
		{"acmed_certificates", map[string]string{"status": "valid"}, 1},
		{"acmed_certificates", map[string]string{"status": "revoked"}, 0},
		{"acmed_certificates_expiring", map[string]string{"within": "24h"}, 0},
		{"acmed_certificates_expiring", map[string]string{"within": "7d"}, 1}, // --cert-validity's 168h
		{"acmed_certificates_expiring", map[string]string{"within": "30d"}, 1},
		{"acmed_certificates_not_renewed", nil, 0},
		{"acmed_alerts_raised_total", map[string]string{"event": "certificate.not_renewed"}, 0},
		{"go_goroutines", nil, -1},
	} {
		if !inventory && strings.HasPrefix(tc.family, "acmed_certificates") && tc.family != "acmed_certificates_issued_total" {
			t.Logf("no inventory in this store: %s not checked", tc.family)
			continue
		}
		got, ok := value(fams[tc.family], tc.labels)
		switch {
		case !ok:
			t.Errorf("no series %s%v", tc.family, tc.labels)
		case tc.want >= 0 && got != tc.want:
			t.Errorf("%s%v = %v, want %v", tc.family, tc.labels, got, tc.want)
		}
	}
	// Routes are templates: a raw path would put every order's ID in a
	// label, and any client's made-up path.
	for _, m := range fams["acmed_http_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "route" && l.GetValue() != "unmatched" && !knownRoute(l.GetValue()) {
				t.Errorf("route label %q is not a route template", l.GetValue())
			}
		}
	}
}

// TestMetricsJobsPendingRedis: an acmed on Redis serves the queue's
// length and its oldest job's age from the streams. The job is one an
// earlier acmed left in its single stream, never read by a group, dated
// 1s after the epoch: no replica takes it, so it stays until the test
// deletes it.
func TestMetricsJobsPendingRedis(t *testing.T) {
	r := redistest.Start(t)
	if r.Dir == "" {
		t.Skip("REDIS_URL is shared: its job streams are not this test's alone")
	}
	opts, err := redis.ParseURL(r.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = rc.Close() })
	ctx := t.Context()
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	s := startAcmed(t, data, "--store", r.URL, "--metrics-listen", "127.0.0.1:0")
	if s.MetricsURL == "" {
		t.Fatal("acmed printed no metrics URL")
	}
	const legacy = "acmed:{jobs}"
	if err := rc.XAdd(ctx, &goredis.XAddArgs{Stream: legacy, ID: "1000-0", Values: []any{"job", `{"OrderID":"acct1.old"}`}}).Err(); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, s.MetricsURL)
	if n, ok := value(fams["acmed_jobs_pending"], nil); !ok || n != 1 {
		t.Errorf("acmed_jobs_pending = %v (served: %v), want 1", n, ok)
	}
	// Older than the 55 years since 1970-01-01T00:00:01Z: the entry's
	// ID, not when the test added it.
	const years55 = 55 * 365 * 24 * 3600
	if age, ok := value(fams["acmed_jobs_oldest_age_seconds"], nil); !ok || age < years55 {
		t.Errorf("acmed_jobs_oldest_age_seconds = %v (served: %v), want the entry ID's age, over %v", age, ok, float64(years55))
	}

	if err := rc.XDel(ctx, legacy, "1000-0").Err(); err != nil {
		t.Fatal(err)
	}
	fams = scrape(t, s.MetricsURL)
	for _, fam := range []string{"acmed_jobs_pending", "acmed_jobs_oldest_age_seconds"} {
		if v, ok := value(fams[fam], nil); !ok || v != 0 {
			t.Errorf("%s = %v (served: %v) once the job is gone, want 0", fam, v, ok)
		}
	}
}

func knownRoute(r string) bool {
	switch r {
	case "/directory", "/acme/new-nonce", "/acme/new-account", "/acme/new-order", "/acme/revoke-cert",
		"/acme/key-change", "/roots.pem", "/healthz", "/readyz":
		return true
	}
	return strings.Contains(r, "{")
}

// scrape reads url in the Prometheus text format.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value is the series of f with exactly labels: a counter's or gauge's
// value, a histogram's sample count.
func value(f *dto.MetricFamily, labels map[string]string) (float64, bool) {
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			match = match && labels[l.GetName()] == l.GetValue()
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
