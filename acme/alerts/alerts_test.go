package alerts_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/alerts"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
)

// clock is the injected time of the store and the alerters.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// openStore is a real embedded store on clk.
func openStore(t *testing.T, clk *clock) alerts.Store {
	t.Helper()
	s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{Now: clk.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// putCert stores a certificate of life lifetime that started ago before
// now: with the default window (the last third of the lifetime, ending a
// sixth before notAfter), ago > 5/6 life is past its window.
func putCert(t *testing.T, s alerts.Store, clk *clock, serial string, life, ago time.Duration) *acme.Certificate {
	t.Helper()
	return putReplacement(t, s, clk, serial, "", serial+".example.test", life, ago)
}

// putReplacement stores a certificate for name that replaces another
// (replaces: its serial, or "").
func putReplacement(t *testing.T, s alerts.Store, clk *clock, serial, replaces, name string, life, ago time.Duration) *acme.Certificate {
	t.Helper()
	nb := clk.Now().Add(-ago)
	c := &acme.Certificate{Serial: serial, AccountID: "acct1", OrderID: "o-" + serial, ChainPEM: []byte("-"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: name}},
		NotBefore:   nb, NotAfter: nb.Add(life), Profile: "mtls", Replaces: replaces}
	if err := s.PutCertificate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// webhook is a real HTTP server on loopback that answers 500 to its first
// fail requests, then 204, and keeps what it received.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	fail   int
	bodies []alerts.Body
	keys   []string
}

func newWebhook(t *testing.T, fail int) *webhook {
	t.Helper()
	w := &webhook{fail: fail}
	w.Server = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var b alerts.Body
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(rw, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.bodies = append(w.bodies, b)
		w.keys = append(w.keys, r.Header.Get("Idempotency-Key"))
		if len(w.bodies) <= w.fail {
			http.Error(rw, "not now", http.StatusInternalServerError)
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.Close)
	return w
}

func (w *webhook) received() []alerts.Body {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]alerts.Body(nil), w.bodies...)
}

// delivered is what the webhook took (answered 2xx), by event and serial.
func (w *webhook) delivered() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	got := map[string]int{}
	for i, b := range w.bodies {
		if i >= w.fail {
			got[b.Event+" "+b.Serial]++
		}
	}
	return got
}

// unreachable is the URL of a loopback port nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/hook"
}

// hooks counts what one alerter raised and delivered.
type hooks struct {
	mu                 sync.Mutex
	queued             map[string]int
	delivered, failure int
}

func (h *hooks) Queued(event string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.queued == nil {
		h.queued = map[string]int{}
	}
	h.queued[event]++
}

func (h *hooks) Delivery(outcome string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if outcome == "delivered" {
		h.delivered++
	} else {
		h.failure++
	}
}

func (h *hooks) raised() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.queued {
		n += v
	}
	return n
}

func newAlerter(t *testing.T, s alerts.Store, clk *clock, holder string, h *hooks, urls ...string) *alerts.Alerter {
	t.Helper()
	a, err := alerts.New(alerts.Config{Store: s, Webhooks: urls, Holder: holder, Interval: time.Minute,
		CampaignGrace: 10 * time.Minute, Timeout: 2 * time.Second, RetryMin: time.Minute, RetryMax: 8 * time.Minute,
		Now: clk.Now, Logger: quiet(), Hooks: h})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pass(t *testing.T, a *alerts.Alerter) {
	t.Helper()
	if err := a.Pass(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A certificate past its renewal window is alerted about; one inside its
// window (its client still has time) and one renewed are not. A webhook
// that fails twice gets the alert a third time, after backoffs of 1 and 2
// minutes, with the same id, and never again once it took it.
func TestNotRenewedRetriedUntilDelivered(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := openStore(t, clk)
	late := putCert(t, s, clk, "0a01", 24*time.Hour, 21*time.Hour) // window ended 1h ago
	putCert(t, s, clk, "0a02", 24*time.Hour, 17*time.Hour)         // inside its window
	putCert(t, s, clk, "0a03", 24*time.Hour, time.Hour)            // fresh
	hook := newWebhook(t, 2)
	a := newAlerter(t, s, clk, "replica-1", &hooks{}, hook.URL+"/alerts?token=secret")

	steps := []struct {
		advance time.Duration
		posts   int // the webhook's requests so far
	}{
		{0, 1},                // raised and sent: 500
		{30 * time.Second, 1}, // not due before the first backoff (1m)
		{30 * time.Second, 2}, // 1m after: sent again, 500
		{time.Minute, 2},      // the second backoff is 2m
		{time.Minute, 3},      // delivered
		{10 * time.Minute, 3}, // never again
	}
	for i, st := range steps {
		clk.Advance(st.advance)
		pass(t, a)
		if got := len(hook.received()); got != st.posts {
			t.Fatalf("step %d: the webhook got %d requests, want %d", i, got, st.posts)
		}
	}
	got := hook.received()
	for i, b := range got {
		want := alerts.Body{ID: acme.AlertNotRenewed + "/0a01", Event: acme.AlertNotRenewed, Serial: "0a01",
			Identifiers: late.Identifiers, Account: "acct1", NotAfter: late.NotAfter.UTC(), DetectedAt: got[0].DetectedAt, Attempt: i + 1}
		if fmt.Sprint(b) != fmt.Sprint(want) {
			t.Errorf("delivery %d:\n got %+v\nwant %+v", i, b, want)
		}
		if hook.keys[i] != want.ID {
			t.Errorf("delivery %d: Idempotency-Key %q, want %q", i, hook.keys[i], want.ID)
		}
	}
}

// An unreachable webhook does not lose its alert, nor hold up another
// webhook: the reachable one gets the alert at once, the unreachable one's
// delivery stays in the outbox, retried later.
func TestUnreachableWebhookRetried(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := openStore(t, clk)
	putCert(t, s, clk, "0b01", 24*time.Hour, 22*time.Hour)
	putCert(t, s, clk, "0b02", 24*time.Hour, 22*time.Hour)
	good, dead := newWebhook(t, 0), unreachable(t)
	h := &hooks{}
	a := newAlerter(t, s, clk, "replica-1", h, dead, good.URL)
	pass(t, a)
	if got := good.delivered(); len(got) != 2 {
		t.Fatalf("the reachable webhook took %v, want both alerts", got)
	}
	if h.failure != 1 {
		t.Errorf("failed POSTs: %d, want 1 (a failed webhook is not tried again in the same pass)", h.failure)
	}
	due, err := s.DueAlerts(context.Background(), clk.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 2 {
		t.Fatalf("deliveries kept for the unreachable webhook: %d, want 2", len(due))
	}
	for _, d := range due {
		if d.URL != dead {
			t.Errorf("a delivery to %s is still due", d.URL)
		}
	}
	// Later passes keep trying, and keep the deliveries.
	for range 3 {
		clk.Advance(10 * time.Minute)
		pass(t, a)
	}
	if due, err = s.DueAlerts(context.Background(), clk.Now().Add(time.Hour), 10); err != nil || len(due) != 2 {
		t.Fatalf("deliveries after more failures: %d, %v; want 2 kept", len(due), err)
	}
	if h.failure < 3 {
		t.Errorf("failed POSTs after three more passes: %d", h.failure)
	}
}

// Two replicas on one store: one holds the lease and does all the work,
// the other none; each alert is delivered once. When the holder stops, the
// other takes over once the lease has run out.
func TestOneReplicaScans(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := openStore(t, clk)
	for i := range 5 {
		putCert(t, s, clk, fmt.Sprintf("0c%02x", i+1), 24*time.Hour, 22*time.Hour)
	}
	hook := newWebhook(t, 0)
	h1, h2 := &hooks{}, &hooks{}
	a1 := newAlerter(t, s, clk, "replica-1", h1, hook.URL)
	a2 := newAlerter(t, s, clk, "replica-2", h2, hook.URL)
	pass(t, a1)
	var wg sync.WaitGroup
	for _, a := range []*alerts.Alerter{a1, a2, a1, a2} {
		wg.Go(func() { pass(t, a) })
	}
	wg.Wait()
	if h1.raised() != 5 || h2.raised() != 0 {
		t.Errorf("raised by replica 1: %d, by replica 2: %d; want 5 and 0", h1.raised(), h2.raised())
	}
	got := hook.delivered()
	if len(got) != 5 {
		t.Errorf("delivered: %v, want 5 alerts", got)
	}
	for k, n := range got {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}

	// replica-1 stops; a new late certificate waits for replica-2 to take
	// the lease (3 intervals).
	putCert(t, s, clk, "0cff", 24*time.Hour, 22*time.Hour)
	clk.Advance(2 * time.Minute)
	pass(t, a2)
	if h2.raised() != 0 {
		t.Fatal("replica 2 scanned while replica 1's lease ran")
	}
	clk.Advance(2 * time.Minute)
	pass(t, a2)
	if h2.raised() != 1 || hook.delivered()[acme.AlertNotRenewed+" 0cff"] != 1 {
		t.Errorf("after the lease ran out: replica 2 raised %d, delivered %v", h2.raised(), hook.delivered())
	}
}

// A campaign's certificates still not replaced once its window has closed
// and the grace has passed are alerted about as campaign_pending (and not
// as not_renewed); a replaced one is not.
func TestCampaignPending(t *testing.T) {
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	s := openStore(t, clk)
	ctx := context.Background()
	for _, serial := range []string{"0d01", "0d02"} {
		putCert(t, s, clk, serial, 30*24*time.Hour, 24*time.Hour)
	}
	now := clk.Now()
	camp := &acme.Campaign{ID: "camp1", CreatedAt: now, CreatedBy: "token", Filter: "--serial 0d01 0d02",
		WindowStart: now, WindowEnd: now.Add(time.Minute)}
	if n, err := s.CreateCampaign(ctx, camp, storage.CertFilter{Now: now, Serials: []string{"0d01", "0d02"}}); err != nil || n != 2 {
		t.Fatalf("campaign: %d, %v", n, err)
	}
	// Its client renews 0d02.
	putReplacement(t, s, clk, "0d03", "0d02", "0d02.example.test", 30*24*time.Hour, 0)
	hook := newWebhook(t, 0)
	a := newAlerter(t, s, clk, "replica-1", &hooks{}, hook.URL)
	pass(t, a)
	if got := hook.received(); len(got) != 0 {
		t.Fatalf("alerts before the grace ran out: %+v", got)
	}
	clk.Advance(12 * time.Minute)
	pass(t, a)
	got := hook.received()
	if len(got) != 1 || got[0].Event != acme.AlertCampaignPending || got[0].Serial != "0d01" || got[0].CampaignID != "camp1" {
		t.Fatalf("alerts after the grace: %+v; want campaign_pending for 0d01 only", got)
	}
}

// The webhook URL must be http(s); the error names the flag and hides the
// URL's path and query, where chat services keep the secret.
func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"https://hooks.example.test/services/T0/B0/secret", true},
		{"http://127.0.0.1:9000/alerts", true},
		{"ftp://example.test/x", false},
		{"hooks.example.test/alerts", false},
		{"https:///nohost", false},
	} {
		err := alerts.CheckURL(tc.url)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tc.url, err, tc.ok)
		}
	}
}

// Run, on a short interval and the real clock: two replicas running side
// by side deliver each alert once.
func TestRunTwoReplicas(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	s := openStore(t, clk)
	for i := range 3 {
		putCert(t, s, clk, fmt.Sprintf("0e%02x", i+1), time.Hour, 55*time.Minute)
	}
	hook := newWebhook(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		a, err := alerts.New(alerts.Config{Store: s, Webhooks: []string{hook.URL}, Holder: fmt.Sprintf("replica-%d", i),
			Interval: 20 * time.Millisecond, RetryMin: 20 * time.Millisecond, Timeout: time.Second, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { _ = a.Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		due, err := s.DueAlerts(context.Background(), time.Now().Add(time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(hook.delivered()) == 3 && len(due) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: delivered %v, %d still due", hook.delivered(), len(due))
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	for k, n := range hook.delivered() {
		if n != 1 {
			t.Errorf("%s delivered %d times", k, n)
		}
	}
}
