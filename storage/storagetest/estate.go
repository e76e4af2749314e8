package storagetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// EstateStore is a store with issue 15's certificate estate.
type EstateStore interface {
	storage.Store
	storage.Estate
}

// RunEstate runs the estate part of the suite: the inventory, campaigns,
// leases and the alert outbox. open is as for Run: a fresh, empty store
// whose clock is close to real time (leases expire by it), closed with
// t.Cleanup.
//
// Certificate times lie in 2099, ahead of any real clock, so a backend
// that derives TTLs from notAfter keeps them all; queries are judged at
// the filter's Now, estateNow, by which some of them are expired.
func RunEstate(t *testing.T, open func(t *testing.T) EstateStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) EstateStore)
	}{
		{"Filters", testEstateFilters},
		{"Pagination", testEstatePagination},
		{"Counts", testEstateCounts},
		{"Replacement", testReplacement},
		{"Revocation", testEstateRevocation},
		{"Campaigns", testCampaigns},
		{"CampaignNothing", testCampaignNothing},
		{"Leases", testLeases},
		{"AlertOutbox", testAlertOutbox},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

// estateNow is the time the estate's queries are judged at.
func estateNow() time.Time { return time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC) }

const day = 24 * time.Hour

// estateCert is one certificate of the fixture estate, relative to
// estateNow.
type estateCert struct {
	serial, account, profile string
	notBefore, notAfter      time.Duration // from estateNow
	revoked                  bool
	ids                      []acme.Identifier
}

func dns(names ...string) []acme.Identifier {
	var ids []acme.Identifier
	for _, n := range names {
		ids = append(ids, acme.Identifier{Type: acme.IdentifierDNS, Value: n})
	}
	return ids
}

func ip(addr string) []acme.Identifier {
	return []acme.Identifier{{Type: acme.IdentifierIP, Value: addr}}
}

// estate is the fixture estate, every identifier set distinct per account
// so that no certificate replaces another. Each is commented with what it
// is at estateNow; a 90-day certificate's default renewal window opens 30
// days before notAfter.
var estate = []estateCert{
	// valid, window open: not renewed
	{"c001", "acct-a", "mtls", -80 * day, 10 * day, false, dns("www.example.com")},
	// valid, expiring within 24h, not renewed; notAfter ties with c00b
	{"c002", "acct-a", "mtls", -89*day - 12*time.Hour, 12 * time.Hour, false, dns("api.example.com", "example.com")},
	// valid wildcard, window not open
	{"c003", "acct-b", "server", -10 * day, 80 * day, false, dns("*.example.com")},
	// expired
	{"c004", "acct-b", "server", -95 * day, -5 * day, false, dns("example.org")},
	// short-lived IP certificate, expiring within 24h, window (last third) not open
	{"c005", "acct-a", "shortlived", -time.Hour, 23 * time.Hour, false, ip("10.0.0.1")},
	// window opens exactly at estateNow: not renewed
	{"c006", "acct-b", "mtls", -60 * day, 30 * day, false, dns("db.internal.example.com")},
	// revoked, expiring within 24h
	{"c007", "acct-a", "mtls", -70 * day, 20 * time.Hour, true, dns("mail.example.com")},
	// a name that only contains example.com
	{"c008", "acct-c", "server", -30 * day, 60 * day, false, dns("example.com.evil.net")},
	{"c009", "acct-c", "server", -day, 89 * day, false, dns("notexample.com")},
	// an IP address that "ends with" 10.0.0.1's digits
	{"c00a", "acct-c", "mtls", -2 * day, 88 * day, false, ip("10.0.0.10")},
	// ties with c002 on notAfter, stored before it
	{"c00b", "acct-c", "mtls", -89*day - 12*time.Hour, 12 * time.Hour, false, dns("tie.example.net")},
	// revoked and expired: revoked
	{"c00c", "acct-c", "mtls", -100 * day, -10 * day, true, dns("old.example.com")},
	// 7-day certificate expiring exactly 24h from now: expiring within 24h, not renewed
	{"c00d", "acct-b", "mtls", -6 * day, day, false, dns("edge.example.com")},
	// notAfter exactly now: expired
	{"0c0e", "acct-a", "mtls", -90 * day, 0, false, dns("now.example.com")},
	// a longer serial, sorting by serial among equal notAfters
	{"c00b01", "acct-b", "server", -89*day - 12*time.Hour, 12 * time.Hour, false, dns("api.example.net")},
}

func (e estateCert) cert() *acme.Certificate {
	now := estateNow()
	c := &acme.Certificate{
		Serial:      e.serial,
		AccountID:   e.account,
		OrderID:     "order-" + e.serial,
		ChainPEM:    []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		Identifiers: e.ids,
		NotBefore:   now.Add(e.notBefore),
		NotAfter:    now.Add(e.notAfter),
		Profile:     e.profile,
	}
	if e.revoked {
		c.Revoked, c.RevokedAt, c.Reason = true, now.Add(-time.Hour), 1
	}
	return c
}

// loadEstate stores the fixture estate, in an order that is neither by
// serial nor by notAfter; every third certificate through an order's
// update, the way issuance stores it, the others through PutCertificate.
// Revoked ones are revoked after they are stored, as revocation does.
func loadEstate(t *testing.T, s EstateStore) {
	t.Helper()
	ctx := t.Context()
	for i, k := range []int{10, 1, 3, 0, 5, 14, 7, 2, 12, 9, 4, 11, 6, 8, 13} {
		e := estate[k]
		c := e.cert()
		c.Revoked, c.RevokedAt, c.Reason = false, time.Time{}, 0
		putCert(t, s, c, i%3 == 0)
		if e.revoked {
			_, err := s.UpdateCertificate(ctx, c.Serial, func(c *acme.Certificate) error {
				return acme.Revoke(c, 1, estateNow().Add(-time.Hour))
			})
			mustNot(t, "UpdateCertificate revoking "+c.Serial, err)
		}
	}
}

// putCert stores c, through an order's update if viaOrder.
func putCert(t *testing.T, s EstateStore, c *acme.Certificate, viaOrder bool) {
	t.Helper()
	ctx := t.Context()
	if !viaOrder {
		mustNot(t, "PutCertificate "+c.Serial, s.PutCertificate(ctx, c))
		return
	}
	a := newAuthz("authz-"+c.Serial, c.AccountID, "x.example", false)
	o := newOrder(c.OrderID, c.AccountID, a)
	o.Identifiers = c.Identifiers
	o.Status = acme.StatusProcessing
	mustNot(t, "CreateOrder "+o.ID, s.CreateOrder(ctx, o, []*acme.Authorization{a}))
	_, err := s.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
		o.Status, o.CertSerial = acme.StatusValid, c.Serial
		return nil
	}, storage.WithCertificate(c))
	mustNot(t, "UpdateOrder with certificate "+c.Serial, err)
}

// wantMatch is the inventory's contract (storage.CertFilter) as a
// predicate on one certificate as stored.
func wantMatch(c *acme.Certificate, f storage.CertFilter) bool {
	now := f.Now
	unexpired := now.Before(c.NotAfter)
	if f.Status != "" && c.Status(now) != f.Status {
		return false
	}
	if f.ExpiringWithin > 0 && (!unexpired || c.NotAfter.After(now.Add(f.ExpiringWithin))) {
		return false
	}
	if f.NotRenewed {
		start, _ := c.RenewalWindow()
		if !unexpired || c.Revoked || c.ReplacedBy != "" || start.After(now) {
			return false
		}
	}
	if f.SANSuffix != "" && !slices.ContainsFunc(c.Identifiers, func(id acme.Identifier) bool {
		if id.Type == acme.IdentifierIP {
			return id.Value == f.SANSuffix
		}
		return id.Value == f.SANSuffix || strings.HasSuffix(id.Value, "."+f.SANSuffix)
	}) {
		return false
	}
	if f.Account != "" && c.AccountID != f.Account {
		return false
	}
	if f.Profile != "" && c.Profile != f.Profile {
		return false
	}
	if !f.IssuedBefore.IsZero() && !c.NotBefore.Before(f.IssuedBefore) {
		return false
	}
	if len(f.Serials) > 0 && !slices.Contains(f.Serials, c.Serial) {
		return false
	}
	return true
}

// stored reads back every certificate of the estate (as the store holds
// it: replacement and campaigns change them), for wantMatch.
func stored(t *testing.T, s EstateStore, serials []string) []*acme.Certificate {
	t.Helper()
	var all []*acme.Certificate
	for _, serial := range serials {
		c, err := s.Certificate(t.Context(), serial)
		mustNot(t, "Certificate "+serial, err)
		all = append(all, c)
	}
	return all
}

func estateSerials() []string {
	var serials []string
	for _, e := range estate {
		serials = append(serials, e.serial)
	}
	return serials
}

// wantList is the serials of all matching f, ordered as ListCertificates
// orders them: by notAfter, then serial.
func wantList(all []*acme.Certificate, f storage.CertFilter) []string {
	var m []*acme.Certificate
	for _, c := range all {
		if wantMatch(c, f) {
			m = append(m, c)
		}
	}
	slices.SortFunc(m, func(a, b *acme.Certificate) int {
		if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
			return c
		}
		return strings.Compare(a.Serial, b.Serial)
	})
	serials := []string{}
	for _, c := range m {
		serials = append(serials, c.Serial)
	}
	return serials
}

// listAll pages through ListCertificates with limit, checking each page
// keeps to it, and returns the serials in the order listed and the
// certificates.
func listAll(t *testing.T, s EstateStore, f storage.CertFilter, limit int) ([]string, []*acme.Certificate) {
	t.Helper()
	serials := []string{}
	var certs []*acme.Certificate
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > len(estate)+5 {
			t.Fatalf("ListCertificates(%+v, limit %d) did not end after %d pages", f, limit, pages)
		}
		page, next, err := s.ListCertificates(t.Context(), f, cursor, limit)
		mustNot(t, "ListCertificates", err)
		if len(page) > limit {
			t.Fatalf("ListCertificates(%+v, limit %d) returned %d", f, limit, len(page))
		}
		if next != "" && len(page) < limit {
			t.Fatalf("ListCertificates(%+v, limit %d): a page of %d that is not the last", f, limit, len(page))
		}
		for _, c := range page {
			serials = append(serials, c.Serial)
			certs = append(certs, c)
		}
		if next == "" {
			return serials, certs
		}
		cursor = next
	}
}

// estateFilters is every filter alone, and some together.
func estateFilters() []storage.CertFilter {
	now := estateNow()
	return []storage.CertFilter{
		{Now: now},
		{Now: now, Status: acme.CertValid},
		{Now: now, Status: acme.CertRevoked},
		{Now: now, Status: acme.CertExpired},
		{Now: now, ExpiringWithin: day},
		{Now: now, ExpiringWithin: 12 * time.Hour},
		{Now: now, ExpiringWithin: 15 * day},
		{Now: now, NotRenewed: true},
		{Now: now.Add(15 * time.Hour), NotRenewed: true},
		{Now: now.Add(-day), NotRenewed: true},
		{Now: now, SANSuffix: "example.com"},
		{Now: now, SANSuffix: "www.example.com"},
		{Now: now, SANSuffix: "com"},
		{Now: now, SANSuffix: "internal.example.com"},
		{Now: now, SANSuffix: "10.0.0.1"},
		{Now: now, SANSuffix: "0.0.1"},
		{Now: now, SANSuffix: "nothing.test"},
		{Now: now, Account: "acct-a"},
		{Now: now, Account: "acct-none"},
		{Now: now, Profile: "server"},
		{Now: now, Profile: "shortlived"},
		{Now: now, IssuedBefore: now.Add(-60 * day)},
		{Now: now, IssuedBefore: now.Add(-2 * day)},
		{Now: now, Serials: []string{"c003", "c00c", "c00b01", "ffff"}},
		{Now: now, Status: acme.CertValid, SANSuffix: "example.com"},
		{Now: now, ExpiringWithin: day, Status: acme.CertValid},
		{Now: now, ExpiringWithin: day, Account: "acct-a"},
		{Now: now, NotRenewed: true, SANSuffix: "example.com", Account: "acct-b"},
		{Now: now, NotRenewed: true, Profile: "mtls", ExpiringWithin: 15 * day},
		{Now: now, Account: "acct-c", Profile: "mtls", Status: acme.CertValid},
		{Now: now, IssuedBefore: now.Add(-60 * day), SANSuffix: "example.com", Status: acme.CertValid},
		{Now: now, Serials: []string{"c001", "c002", "c005"}, ExpiringWithin: day},
		{Now: now, Profile: "server", Account: "acct-b", Status: acme.CertExpired},
	}
}

// testEstateFilters: each filter alone and together selects what
// storage.CertFilter says, whole records ordered by notAfter then serial.
func testEstateFilters(t *testing.T, open func(*testing.T) EstateStore) {
	s := open(t)
	loadEstate(t, s)
	all := stored(t, s, estateSerials())
	for i, c := range all {
		want := estate[i].cert()
		mustEqual(t, "stored certificate "+want.Serial, c, want)
	}
	byserial := map[string]*acme.Certificate{}
	for _, c := range all {
		byserial[c.Serial] = c
	}
	for _, f := range estateFilters() {
		t.Run(describe(f), func(t *testing.T) {
			got, certs := listAll(t, s, f, 100)
			mustEqual(t, "serials", got, wantList(all, f))
			for _, c := range certs {
				mustEqual(t, "listed certificate "+c.Serial, c, byserial[c.Serial])
			}
		})
	}
}

// testEstatePagination: any page size goes through every match once, in
// order, without gaps.
func testEstatePagination(t *testing.T, open func(*testing.T) EstateStore) {
	s := open(t)
	loadEstate(t, s)
	all := stored(t, s, estateSerials())
	for _, f := range estateFilters() {
		want := wantList(all, f)
		for _, limit := range []int{1, 2, 3, 5} {
			t.Run(fmt.Sprintf("%s/limit %d", describe(f), limit), func(t *testing.T) {
				got, _ := listAll(t, s, f, limit)
				mustEqual(t, "serials", got, want)
			})
		}
	}
}

// describe names a filter for a subtest.
func describe(f storage.CertFilter) string {
	var parts []string
	if d := f.Now.Sub(estateNow()); d != 0 {
		parts = append(parts, "at "+d.String())
	}
	if f.Status != "" {
		parts = append(parts, string(f.Status))
	}
	if f.ExpiringWithin != 0 {
		parts = append(parts, "expiring "+f.ExpiringWithin.String())
	}
	if f.NotRenewed {
		parts = append(parts, "not renewed")
	}
	if f.SANSuffix != "" {
		parts = append(parts, "san "+f.SANSuffix)
	}
	if f.Account != "" {
		parts = append(parts, f.Account)
	}
	if f.Profile != "" {
		parts = append(parts, "profile "+f.Profile)
	}
	if !f.IssuedBefore.IsZero() {
		parts = append(parts, "before "+f.IssuedBefore.Sub(estateNow()).String())
	}
	if len(f.Serials) > 0 {
		parts = append(parts, fmt.Sprintf("serials %q", f.Serials))
	}
	if len(parts) == 0 {
		return "all"
	}
	return strings.Join(parts, ", ")
}
