package crl_test

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
)

const (
	base     = "https://acme.example.internal:14000"
	validity = 24 * time.Hour
	refresh  = time.Minute
)

// clock is a test clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	clk   *clock
	ca    *ca.Local
	store *embedded.Store
	path  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	clk := &clock{now: time.Now().Truncate(time.Second)}
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.Init(dir, ca.Config{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	l, err := ca.Load(dir, ca.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{clk: clk, ca: l, path: filepath.Join(t.TempDir(), "acmed.db")}
	e.store = e.open(t)
	return e
}

func (e *env) open(t *testing.T) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(e.path, embedded.Config{Now: e.clk.Now, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func (e *env) publisher(t *testing.T, holder string) *crl.Publisher {
	t.Helper()
	p, err := crl.New(crl.Config{Store: e.store, Issuer: e.ca, BaseURL: base, Validity: validity,
		Refresh: refresh, Holder: holder, Now: e.clk.Now, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// cert stores a certificate expiring at notAfter, revoked with reason
// unless reason is negative.
func (e *env) cert(t *testing.T, serial string, notAfter time.Time, reason int) {
	t.Helper()
	c := &acme.Certificate{Serial: serial, AccountID: "acct", OrderID: "order-" + serial,
		ChainPEM:    []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: serial + ".example"}},
		NotBefore:   notAfter.Add(-90 * 24 * time.Hour), NotAfter: notAfter}
	if err := e.store.PutCertificate(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if reason >= 0 {
		e.revoke(t, serial, reason)
	}
}

func (e *env) revoke(t *testing.T, serial string, reason int) {
	t.Helper()
	_, err := e.store.UpdateCertificate(t.Context(), serial, func(c *acme.Certificate) error {
		return acme.Revoke(c, reason, e.clk.Now().Add(-time.Minute))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// served returns the CRL p serves, parsed and checked: signed by the
// intermediate, with its issuing distribution point at p's URL.
func (e *env) served(t *testing.T, p *crl.Publisher) (*storage.CRL, *x509.RevocationList) {
	t.Helper()
	c, err := p.CRL(t.Context(), p.Issuer())
	if err != nil {
		t.Fatalf("CRL: %v", err)
	}
	list, err := x509.ParseRevocationList(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(e.ca.Intermediate()); err != nil {
		t.Fatalf("CheckSignatureFrom(intermediate): %v", err)
	}
	if list.Number.Cmp(new(big.Int).SetUint64(c.Number)) != 0 || !list.ThisUpdate.Equal(c.ThisUpdate) ||
		!list.NextUpdate.Equal(c.NextUpdate) || len(list.RevokedCertificateEntries) != c.Entries {
		t.Fatalf("stored fields %d %v %v %d disagree with the DER's %v %v %v %d", c.Number, c.ThisUpdate, c.NextUpdate,
			c.Entries, list.Number, list.ThisUpdate, list.NextUpdate, len(list.RevokedCertificateEntries))
	}
	found := false
	for _, ext := range list.Extensions {
		if ext.Id.Equal([]int{2, 5, 29, 28}) {
			uris, onlyUser, err := ca.ParseIssuingDistributionPoint(ext.Value)
			found = err == nil && ext.Critical && onlyUser && slices.Equal(uris, []string{p.DistributionPoint()})
		}
	}
	if !found {
		t.Fatalf("no critical issuing distribution point for %s", p.DistributionPoint())
	}
	return c, list
}

// entries is serial (canonical hex) -> reason.
func entries(list *x509.RevocationList) map[string]int {
	out := map[string]int{}
	for _, e := range list.RevokedCertificateEntries {
		out[acme.SerialHex(e.SerialNumber)] = e.ReasonCode
	}
	return out
}

func pass(t *testing.T, p *crl.Publisher) {
	t.Helper()
	if err := p.Pass(t.Context()); err != nil {
		t.Fatalf("Pass: %v", err)
	}
}

func TestURL(t *testing.T) {
	e := newEnv(t)
	p := e.publisher(t, "a")
	want := base + "/crl/" + ca.CRLName(e.ca.Intermediate()) + ".crl"
	if got := p.DistributionPoint(); got != want {
		t.Fatalf("DistributionPoint = %q, want %q", got, want)
	}
	if got := crl.URL("http://crl.example/pki/", "ab"); got != "http://crl.example/pki/crl/ab.crl" {
		t.Fatalf("URL with a path and a trailing slash = %q", got)
	}
}

// TestEntries: the CRL lists every revoked certificate with its reason,
// those expired less than a validity ago too, and none that is not
// revoked or expired longer ago.
func TestEntries(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	e.cert(t, "01", now.Add(24*time.Hour), 0)
	e.cert(t, "0a02", now.Add(48*time.Hour), 1) // keyCompromise
	e.cert(t, "7f03", now.Add(72*time.Hour), 4) // superseded
	e.cert(t, "04", now.Add(24*time.Hour), -1)  // good
	e.cert(t, "05", now.Add(-time.Hour), 5)     // expired an hour ago: still listed
	e.cert(t, "06", now.Add(-validity-time.Second), 3)
	p := e.publisher(t, "a")
	pass(t, p)
	c, list := e.served(t, p)
	want := map[string]int{"01": 0, "0a02": 1, "7f03": 4, "05": 5}
	if got := entries(list); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entries (serial: reason) = %v, want %v", got, want)
	}
	if !c.ThisUpdate.Equal(now.Add(-crl.Backdate)) || !c.NextUpdate.Equal(now.Add(validity)) {
		t.Fatalf("thisUpdate, nextUpdate = %v, %v; want %v, %v", c.ThisUpdate, c.NextUpdate, now.Add(-crl.Backdate), now.Add(validity))
	}
	if string(list.AuthorityKeyId) != string(e.ca.Intermediate().SubjectKeyId) {
		t.Fatalf("AuthorityKeyId %x, want %x", list.AuthorityKeyId, e.ca.Intermediate().SubjectKeyId)
	}
	for _, rc := range list.RevokedCertificateEntries {
		if !rc.RevocationTime.Equal(now.Add(-time.Minute)) {
			t.Fatalf("entry %x revoked at %v, want %v", rc.SerialNumber, rc.RevocationTime, now.Add(-time.Minute))
		}
	}
}

// TestFreshness: nothing is rebuilt while nothing changed; a revocation
// is on a CRL at most Refresh/2 after the last build, and then at once;
// half of the validity rebuilds; expired certificates leave.
func TestFreshness(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	e.cert(t, "01", now.Add(-time.Hour), 1) // expired: listed for a validity
	e.cert(t, "02", now.Add(30*24*time.Hour), -1)
	p := e.publisher(t, "a")
	pass(t, p)
	first, _ := e.served(t, p)

	e.clk.add(time.Second)
	pass(t, p)
	if c, _ := e.served(t, p); c.Number != first.Number {
		t.Fatalf("rebuilt with nothing changed: number %d, then %d", first.Number, c.Number)
	}

	e.revoke(t, "02", 4)
	pass(t, p) // less than Refresh/2 since the last build: not yet
	if c, _ := e.served(t, p); c.Number != first.Number {
		t.Fatalf("rebuilt %d within Refresh/2 of the last build", c.Number)
	}
	e.clk.add(refresh / 2)
	pass(t, p)
	second, list := e.served(t, p)
	if second.Number <= first.Number || entries(list)["02"] != 4 {
		t.Fatalf("after a revocation and Refresh/2: number %d (was %d), entries %v", second.Number, first.Number, entries(list))
	}

	// Half of the validity after the last build: rebuilt, though
	// nothing changed. 01 expired less than a validity ago: listed.
	e.clk.add(validity / 2)
	pass(t, p)
	third, list := e.served(t, p)
	if third.Number <= second.Number || len(entries(list)) != 2 {
		t.Fatalf("at half-life: number %d (was %d), entries %v", third.Number, second.Number, entries(list))
	}
	// A validity after 01 expired, the next build leaves it out.
	e.clk.add(validity / 2)
	pass(t, p)
	fourth, list := e.served(t, p)
	if _, ok := entries(list)["01"]; fourth.Number <= third.Number || ok || len(entries(list)) != 1 {
		t.Fatalf("a validity after 01 expired: number %d, entries %v; want 02 only", fourth.Number, entries(list))
	}
}

// TestNumbersGrow: across builds, publishers (replicas), a restart, and
// a clock set back.
func TestNumbersGrow(t *testing.T) {
	e := newEnv(t)
	var last uint64
	build := func(p *crl.Publisher) {
		t.Helper()
		c, err := p.Build(t.Context(), "test")
		if err != nil {
			t.Fatal(err)
		}
		if c.Number <= last {
			t.Fatalf("CRL number %d after %d", c.Number, last)
		}
		last = c.Number
	}
	a, b := e.publisher(t, "a"), e.publisher(t, "b")
	build(a)
	build(a)
	build(b)
	build(a)
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.store = e.open(t)
	build(e.publisher(t, "c"))
	e.clk.add(-48 * time.Hour)
	build(e.publisher(t, "d"))
}

// TestOneBuilder: of two replicas, the one without the lease builds
// nothing and serves what the other stored.
func TestOneBuilder(t *testing.T) {
	e := newEnv(t)
	e.cert(t, "01", e.clk.Now().Add(time.Hour), 1)
	a, b := e.publisher(t, "a"), e.publisher(t, "b")
	pass(t, a)
	pass(t, b)
	first, _ := e.served(t, a)
	seen, _ := e.served(t, b)
	if first.Number != seen.Number {
		t.Fatalf("replicas serve numbers %d and %d", first.Number, seen.Number)
	}
	n, err := e.store.NextCRLNumber(t.Context(), a.Issuer(), 0)
	if err != nil || n != first.Number+1 {
		t.Fatalf("next number %d, %v: someone besides the lease holder took one", n, err)
	}

	// b sees a's next CRL once Poll has passed since it last looked.
	e.cert(t, "02", e.clk.Now().Add(time.Hour), 0)
	e.clk.add(refresh / 2)
	pass(t, a)
	pass(t, b)
	if c, _ := e.served(t, a); c.Number <= first.Number {
		t.Fatalf("a did not rebuild after a revocation")
	}
	e.clk.add(refresh / 4)
	got, list := e.served(t, b)
	if _, ok := entries(list)["02"]; got.Number <= first.Number || !ok {
		t.Fatalf("b serves number %d with %v after a's rebuild", got.Number, entries(list))
	}
}

func TestProblems(t *testing.T) {
	e := newEnv(t)
	p := e.publisher(t, "a")
	for _, tc := range []struct {
		name, issuer string
		status       int
	}{
		{"unknown issuer", "0011223344556677", http.StatusNotFound},
		{"none built yet", p.Issuer(), http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.CRL(t.Context(), tc.issuer)
			var prob *acme.Problem
			if !errors.As(err, &prob) || prob.Status != tc.status {
				t.Fatalf("CRL(%q): %v, want a problem with status %d", tc.issuer, err, tc.status)
			}
		})
	}
}

func TestCacheFor(t *testing.T) {
	e := newEnv(t)
	p := e.publisher(t, "a")
	now := e.clk.Now()
	for _, tc := range []struct {
		next          time.Time
		maxAge, stale time.Duration
	}{
		{now.Add(validity), refresh, validity},
		{now.Add(10 * time.Second), 10 * time.Second, 10 * time.Second},
		{now.Add(-time.Second), 0, 0},
	} {
		if maxAge, stale := p.CacheFor(&storage.CRL{NextUpdate: tc.next}); maxAge != tc.maxAge || stale != tc.stale {
			t.Errorf("CacheFor(nextUpdate in %v) = %v, %v; want %v, %v", tc.next.Sub(now), maxAge, stale, tc.maxAge, tc.stale)
		}
	}
}
