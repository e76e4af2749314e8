package metrics_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/metrics"
	"github.com/acmed/acmed/storage"
)

// countingInventory is the real store's inventory, counting the counts
// asked of it.
type countingInventory struct {
	storage.Inventory
	counts atomic.Int32
}

func (c *countingInventory) CountCertificates(ctx context.Context, now time.Time, within []time.Duration) (storage.CertCounts, error) {
	c.counts.Add(1)
	return c.Inventory.CountCertificates(ctx, now, within)
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func putCert(t *testing.T, s storage.Store, serial string, notBefore time.Time, life time.Duration) {
	t.Helper()
	c := &acme.Certificate{Serial: serial, AccountID: "acct1", OrderID: "o-" + serial, ChainPEM: []byte("-"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: serial + ".example.test"}},
		NotBefore:   notBefore, NotAfter: notBefore.Add(life), Profile: "mtls"}
	if err := s.PutCertificate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// The estate gauges come from the inventory's counts at scrape time, and
// a storm of scrapes inside the cache period costs the store one count.
func TestEstateCached(t *testing.T) {
	store := openStore(t)
	inv := &countingInventory{Inventory: store}
	clk := &testClock{t: time.Now().UTC()}
	now := clk.Now()
	putCert(t, store, "01", now.Add(-time.Hour), 90*24*time.Hour)       // valid, far from expiry
	putCert(t, store, "02", now.Add(-70*24*time.Hour), 80*24*time.Hour) // expiring within 30d, in its window
	putCert(t, store, "03", now.Add(-23*time.Hour), 24*time.Hour)       // expiring within 24h, in its window
	putCert(t, store, "04", now.Add(-48*time.Hour), 24*time.Hour)       // expired
	putCert(t, store, "05", now.Add(-time.Hour), 90*24*time.Hour)       // revoked below
	if _, err := store.UpdateCertificate(context.Background(), "05", func(c *acme.Certificate) error {
		c.Revoked, c.RevokedAt = true, now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	m := metrics.New(metrics.Config{Inventory: inv, Now: clk.Now, EstateCache: 30 * time.Second, Logger: quiet()})
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if n := inv.counts.Load(); n != 1 {
		t.Errorf("20 scrapes inside the cache period counted the estate %d times, want 1", n)
	}
	for _, tc := range []struct {
		name, labels string
		want         float64
	}{
		{"acmed_certificates", `status="valid"`, 3},
		{"acmed_certificates", `status="revoked"`, 1},
		{"acmed_certificates", `status="expired"`, 1},
		{"acmed_certificates_expiring", `within="24h"`, 1},
		{"acmed_certificates_expiring", `within="7d"`, 1},
		{"acmed_certificates_expiring", `within="30d"`, 2},
		{"acmed_certificates_not_renewed", ``, 2},
	} {
		if got := count(t, m, tc.name, tc.labels); got != tc.want {
			t.Errorf("%s{%s} = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	clk.Advance(31 * time.Second)
	count(t, m, "acmed_certificates_not_renewed", ``)
	if n := inv.counts.Load(); n != 2 {
		t.Errorf("a scrape after the cache period: %d counts in all, want 2", n)
	}
}

// dashboard is the part of Grafana's dashboard JSON the test reads.
type dashboard struct {
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		Type       string `json:"type"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

var metricName = regexp.MustCompile(`\b(?:acmed|go|process)_[a-z0-9_]+\b`)

// The dashboard the repository ships is valid JSON, takes its data source
// from a variable, and every panel queries metrics acmed serves; each
// acmed metric family has a panel.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana/acmed-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("docs/grafana/acmed-dashboard.json: %v", err)
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !hasDS {
		t.Error("no datasource variable of type datasource for prometheus")
	}
	served := servedFamilies(t)
	used := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %q, want ${datasource}", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := metricName.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q names no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				fam := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(n, suffix); ok && served[base] == "histogram" {
						fam = base
					}
				}
				if served[fam] == "" {
					t.Errorf("panel %q: %s is not a metric acmed serves", p.Title, n)
				}
				used[fam] = true
			}
		}
	}
	for fam := range served {
		if strings.HasPrefix(fam, "acmed_") && !used[fam] {
			t.Errorf("no panel shows %s", fam)
		}
	}
}

// servedFamilies is every family a server with everything in use serves,
// by name, with its type.
func servedFamilies(t *testing.T) map[string]string {
	t.Helper()
	store := openStore(t)
	m := metrics.New(metrics.Config{Inventory: store, Jobs: store, Logger: quiet(),
		Limits: []string{"new-orders-per-account"}, Profiles: []string{"mtls"}})
	s := m.InstrumentStore(store)
	_, _ = s.Order(context.Background(), "none")
	_, _ = s.(storage.Limiter).Limit(context.Background(), time.Now(), nil)
	m.Instrument("/directory", http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/directory", nil))
	m.Issued("mtls")
	m.Validated(acme.ChallengeHTTP01, "valid")
	m.JobsRunning(0)
	m.Queued(acme.AlertNotRenewed)
	m.Delivery("delivered")
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	served := map[string]string{}
	for _, f := range families {
		served[f.GetName()] = strings.ToLower(f.GetType().String())
	}
	return served
}
