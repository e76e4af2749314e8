package authority_test

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

const day = 24 * time.Hour

// estate is a small certificate estate put straight into the store, at a
// fixed now: what the inventory and campaign tests query.
type estate struct {
	now   time.Time
	certs map[string]*acme.Certificate // by name, as the tests call them
	clock atomic.Int64                 // the authority's now, in Unix nanoseconds
}

// advance moves the authority's clock on by d from es.now.
func (es *estate) advance(d time.Duration) { es.clock.Store(es.now.Add(d).UnixNano()) }

// newEstateEnv is an authority on a fixed clock with these certificates:
//
//	expiring  api.example.com   acct-1 mtls    past its window, expires in 1 day
//	fresh     www.example.com   acct-1 mtls    issued yesterday, 29 days left
//	now       now.example.com   acct-1 mtls    notBefore exactly now (no backdate)
//	other     db.example.net    acct-2 server  20 days left
//	expired   old.example.com   acct-1 mtls    expired an hour ago
//	revoked   rev.example.com   acct-2 mtls    revoked
//	replaced  svc.example.com   acct-2 server  past its window, replaced by renewed
//	renewed   svc.example.com   acct-2 server  the replacement
func newEstateEnv(t *testing.T) (*env, *estate) {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	es := &estate{now: now, certs: map[string]*acme.Certificate{}}
	es.advance(0)
	e := newEnv(t, func(c *authority.Config) { c.Now = func() time.Time { return time.Unix(0, es.clock.Load()) } })
	put := func(name, serial, host, acct, profile string, notBefore, notAfter time.Time, tune func(*acme.Certificate)) {
		c := &acme.Certificate{
			Serial: serial, AccountID: acct, OrderID: acct + ".order-" + name, Identifiers: dnsIDs(host),
			Profile: profile, NotBefore: notBefore, NotAfter: notAfter, ChainPEM: []byte("not a real chain"),
		}
		if tune != nil {
			tune(c)
		}
		if err := e.store.PutCertificate(t.Context(), c); err != nil {
			t.Fatalf("PutCertificate %s: %v", name, err)
		}
		es.certs[name] = c
	}
	put("expiring", "0a01", "api.example.com", "acct-1", "mtls", now.Add(-29*day), now.Add(day), nil)
	put("fresh", "0a02", "www.example.com", "acct-1", "mtls", now.Add(-day), now.Add(29*day), nil)
	put("now", "0a03", "now.example.com", "acct-1", "mtls", now, now.Add(30*day), nil)
	put("other", "0a04", "db.example.net", "acct-2", "server", now.Add(-10*day), now.Add(20*day), nil)
	put("expired", "0a05", "old.example.com", "acct-1", "mtls", now.Add(-30*day), now.Add(-time.Hour), nil)
	put("revoked", "0a06", "rev.example.com", "acct-2", "mtls", now.Add(-2*day), now.Add(28*day), func(c *acme.Certificate) {
		c.Revoked, c.RevokedAt, c.Reason = true, now.Add(-day), 1
	})
	put("replaced", "0a07", "svc.example.com", "acct-2", "server", now.Add(-25*day), now.Add(5*day), nil)
	put("renewed", "0a08", "svc.example.com", "acct-2", "server", now.Add(-time.Hour), now.Add(30*day), func(c *acme.Certificate) {
		c.Replaces = "0a07"
	})
	return e, es
}

func serialsOf(vs []authority.CertView) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Serial
	}
	return out
}

func TestAdminCertificatesList(t *testing.T) {
	e, _ := newEstateEnv(t)
	by := authority.Operator("test")
	tests := []struct {
		name string
		f    storage.CertFilter
		want []string // serials, ordered by notAfter
	}{
		{"everything", storage.CertFilter{}, []string{"0a05", "0a01", "0a07", "0a04", "0a06", "0a02", "0a03", "0a08"}},
		{"expiring within 7 days", storage.CertFilter{ExpiringWithin: 7 * day}, []string{"0a01", "0a07"}},
		{"not renewed", storage.CertFilter{NotRenewed: true}, []string{"0a01"}},
		{"san suffix", storage.CertFilter{SANSuffix: "example.net"}, []string{"0a04"}},
		{"san suffix, any case and a leading dot", storage.CertFilter{SANSuffix: ".Example.NET"}, []string{"0a04"}},
		{"account", storage.CertFilter{Account: "acct-2"}, []string{"0a07", "0a04", "0a06", "0a08"}},
		{"profile", storage.CertFilter{Profile: "server"}, []string{"0a07", "0a04", "0a08"}},
		{"revoked", storage.CertFilter{Status: acme.CertRevoked}, []string{"0a06"}},
		{"expired", storage.CertFilter{Status: acme.CertExpired}, []string{"0a05"}},
		{"valid for acct-1 under example.com", storage.CertFilter{Status: acme.CertValid, Account: "acct-1", SANSuffix: "example.com"}, []string{"0a01", "0a02", "0a03"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, next, err := e.a.AdminCertificates(t.Context(), by, tt.f, "", authority.MaxCertsPage)
			if err != nil || next != "" {
				t.Fatalf("AdminCertificates: next %q, %v", next, err)
			}
			if !slices.Equal(serialsOf(got), tt.want) {
				t.Fatalf("got %q; want %q", serialsOf(got), tt.want)
			}
		})
	}

	// Pages of 3 make the whole list, each serial once, in order.
	var all []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, next, err := e.a.AdminCertificates(t.Context(), by, storage.CertFilter{}, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 3 {
			t.Fatalf("page of %d; want at most 3", len(page))
		}
		all = append(all, serialsOf(page)...)
		if next == "" {
			break
		}
		cursor = next
	}
	if want := tests[0].want; !slices.Equal(all, want) {
		t.Fatalf("pages: %q; want %q", all, want)
	}

	for _, bad := range []struct {
		f     storage.CertFilter
		limit int
	}{{storage.CertFilter{}, 0}, {storage.CertFilter{}, authority.MaxCertsPage + 1}, {storage.CertFilter{Status: "active"}, 10}} {
		if _, _, err := e.a.AdminCertificates(t.Context(), by, bad.f, "", bad.limit); !errors.Is(err, authority.ErrBadRequest) {
			t.Errorf("%+v limit %d: %v; want ErrBadRequest", bad.f, bad.limit, err)
		}
	}
	if got := e.logs.events(t, "admin.certs.list"); len(got) == 0 || got[0]["caller"] != "test" {
		t.Fatalf("audit admin.certs.list: %v", got)
	}
}

// Serials are read as openssl prints them and shown in one form.
func TestAdminCertificateShow(t *testing.T) {
	e, es := newEstateEnv(t)
	by := authority.Operator("test")
	for _, in := range []string{"0a01", "0A01", "a01", "A01", "0a:01", "serial=0A01", " 0x0a01 "} {
		v, err := e.a.AdminCertificate(t.Context(), by, in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if v.Serial != "0a01" || v.Status != acme.CertValid || v.Cert.AccountID != "acct-1" {
			t.Fatalf("%q: %+v", in, v)
		}
		start, end := es.certs["expiring"].SuggestedWindow(es.now)
		if !v.WindowStart.Equal(start) || !v.WindowEnd.Equal(end) {
			t.Fatalf("%q: window %v-%v; want %v-%v", in, v.WindowStart, v.WindowEnd, start, end)
		}
	}
	replaced, err := e.a.AdminCertificate(t.Context(), by, "0a07")
	if err != nil || replaced.ReplacedBy != "0a08" {
		t.Fatalf("replaced certificate: %+v, %v; want replaced_by 0a08", replaced, err)
	}
	if v, err := e.a.AdminCertificate(t.Context(), by, "0a06"); err != nil || v.Status != acme.CertRevoked {
		t.Fatalf("revoked certificate: %+v, %v", v, err)
	}
	if _, err := e.a.AdminCertificate(t.Context(), by, "beef"); !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "beef") {
		t.Fatalf("unknown serial: %v; want ErrNotFound naming it", err)
	}
	for _, bad := range []string{"", "xyz", "00", "0x"} {
		if _, err := e.a.AdminCertificate(t.Context(), by, bad); !errors.Is(err, authority.ErrBadRequest) {
			t.Fatalf("serial %q: %v; want ErrBadRequest", bad, err)
		}
	}
	if got := e.logs.events(t, "admin.certs.show"); len(got) == 0 || got[0]["serial"] != "0a01" {
		t.Fatalf("audit admin.certs.show: %v", got)
	}
}

func TestAdminRenewEarly(t *testing.T) {
	e, es := newEstateEnv(t)
	by := authority.Operator("ops")
	ctx := t.Context()

	// Refusals record nothing.
	for _, tt := range []struct {
		name string
		spec authority.RenewEarlySpec
		want error
	}{
		{"no filter", authority.RenewEarlySpec{}, authority.ErrBadRequest},
		{"only an explanation", authority.RenewEarlySpec{ExplanationURL: "https://ops.example.com/why"}, authority.ErrBadRequest},
		{"bad serial", authority.RenewEarlySpec{Serials: []string{"0a01", "zz"}}, authority.ErrBadRequest},
		{"bad explanation URL", authority.RenewEarlySpec{Profile: "mtls", ExplanationURL: "ops/why"}, authority.ErrBadRequest},
		{"nothing matches", authority.RenewEarlySpec{SANSuffix: "nothing.invalid"}, authority.ErrNoMatch},
		{"only expired and revoked match", authority.RenewEarlySpec{Serials: []string{"0a05", "0a06"}}, authority.ErrNoMatch},
		{"only a replaced one matches", authority.RenewEarlySpec{Serials: []string{"0a07"}}, authority.ErrNoMatch},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.a.AdminRenewEarly(ctx, by, tt.spec); !errors.Is(err, tt.want) {
				t.Fatalf("%v; want %v", err, tt.want)
			}
		})
	}
	if cs, err := e.a.AdminCampaigns(ctx, by); err != nil || len(cs) != 0 {
		t.Fatalf("campaigns after refusals: %v, %v; want none", cs, err)
	}

	// A certificate from a replica whose clock is ahead: its notBefore is
	// after the window would open, so the campaign leaves it out.
	ahead := &acme.Certificate{Serial: "0a0a", AccountID: "acct-1", OrderID: "acct-1.order-ahead", Identifiers: dnsIDs("ahead.example.com"),
		Profile: "mtls", NotBefore: es.now.Add(time.Hour), NotAfter: es.now.Add(30 * day), ChainPEM: []byte("x")}
	if err := e.store.PutCertificate(ctx, ahead); err != nil {
		t.Fatal(err)
	}

	// Every unexpired, unrevoked, unreplaced certificate under example.com
	// (the filters add up: acct-1's) issued before the window opens.
	c, err := e.a.AdminRenewEarly(ctx, by, authority.RenewEarlySpec{SANSuffix: "example.com", Account: "acct-1", ExplanationURL: "https://ops.example.com/why"})
	if err != nil {
		t.Fatal(err)
	}
	matched := []string{"0a01", "0a02", "0a03"}
	if c.ID == "" || c.Matched != len(matched) || c.CreatedBy != "ops" || !strings.Contains(c.Filter, "--san-suffix example.com") {
		t.Fatalf("campaign %+v", c)
	}
	if !c.WindowStart.Equal(es.now.Add(time.Second)) || !c.WindowEnd.Equal(es.now.Add(authority.CampaignWindow)) {
		t.Fatalf("campaign window %v-%v; want a second from now to a minute from now", c.WindowStart, c.WindowEnd)
	}
	for _, s := range matched {
		v, err := e.a.AdminCertificate(ctx, by, s)
		if err != nil {
			t.Fatal(err)
		}
		// cert-manager ignores a window starting at or before notBefore;
		// the window closes at most a minute after the campaign started.
		if !v.WindowStart.After(v.Cert.NotBefore) || v.WindowStart.Before(es.now) || v.WindowEnd.After(es.now.Add(time.Minute)) ||
			!v.WindowEnd.After(v.WindowStart) || v.Cert.CampaignID != c.ID {
			t.Errorf("%s (notBefore %v): window %v-%v, campaign %q", s, v.Cert.NotBefore, v.WindowStart, v.WindowEnd, v.Cert.CampaignID)
		}
	}
	for _, s := range []string{"0a04", "0a0a"} {
		if v, _ := e.a.AdminCertificate(ctx, by, s); v.Cert.CampaignID != "" {
			t.Errorf("certificate %s joined the campaign: %+v", s, v.Cert)
		}
	}
	// Once the window opens, the fresh certificate, far from its normal
	// window, is not renewed.
	es.advance(2 * time.Second)
	nr, _, err := e.a.AdminCertificates(ctx, by, storage.CertFilter{NotRenewed: true}, "", 100)
	if err != nil || !slices.Equal(serialsOf(nr), matched) {
		t.Fatalf("not renewed after the campaign: %q, %v; want %q", serialsOf(nr), err, matched)
	}

	st, err := e.a.AdminCampaign(ctx, by, c.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(st.PendingSerials)
	if st.Matched != 3 || st.Pending != 3 || st.Replaced != 0 || !slices.Equal(st.PendingSerials, matched) {
		t.Fatalf("campaign show: %+v", st)
	}

	// The fresh certificate is replaced: the campaign moves on.
	renewal := &acme.Certificate{Serial: "0a09", AccountID: "acct-1", OrderID: "acct-1.order-r", Identifiers: dnsIDs("www.example.com"),
		Profile: "mtls", NotBefore: es.now, NotAfter: es.now.Add(30 * day), Replaces: "0a02", ChainPEM: []byte("x")}
	if err := e.store.PutCertificate(ctx, renewal); err != nil {
		t.Fatal(err)
	}
	st, err = e.a.AdminCampaign(ctx, by, c.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(st.PendingSerials)
	if st.Matched != 3 || st.Pending != 2 || st.Replaced != 1 || !slices.Equal(st.PendingSerials, []string{"0a01", "0a03"}) {
		t.Fatalf("campaign after one replacement: %+v", st)
	}
	// Pages of one.
	var pages []string
	for cursor, n := "", 0; ; n++ {
		if n > 3 {
			t.Fatal("pending pages do not end")
		}
		p, err := e.a.AdminCampaign(ctx, by, c.ID, cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		pages = append(pages, p.PendingSerials...)
		if cursor = p.Next; cursor == "" {
			break
		}
	}
	sort.Strings(pages)
	if !slices.Equal(pages, []string{"0a01", "0a03"}) {
		t.Fatalf("pending in pages of one: %q", pages)
	}

	// A second campaign by serial; list is newest first.
	c2, err := e.a.AdminRenewEarly(ctx, by, authority.RenewEarlySpec{Serials: []string{"serial=0A04"}})
	if err != nil || c2.Matched != 1 {
		t.Fatalf("campaign by serial: %+v, %v", c2, err)
	}
	list, err := e.a.AdminCampaigns(ctx, by)
	if err != nil || len(list) != 2 {
		t.Fatalf("campaigns: %+v, %v", list, err)
	}
	ids := []string{list[0].ID, list[1].ID}
	if !slices.Contains(ids, c.ID) || !slices.Contains(ids, c2.ID) {
		t.Fatalf("campaigns %q; want %s and %s", ids, c.ID, c2.ID)
	}
	for _, l := range list {
		want := map[string][2]int{c.ID: {2, 1}, c2.ID: {1, 0}}[l.ID]
		if l.Pending != want[0] || l.Replaced != want[1] {
			t.Errorf("campaign %s in the list: pending %d replaced %d; want %v", l.ID, l.Pending, l.Replaced, want)
		}
	}
	if _, err := e.a.AdminCampaign(ctx, by, "no-such-campaign", "", 10); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown campaign: %v", err)
	}

	for _, ev := range []string{"admin.campaign.create", "admin.campaign.show", "admin.campaign.list"} {
		if len(e.logs.events(t, ev)) == 0 {
			t.Errorf("no audit event %s", ev)
		}
	}
	created := e.logs.events(t, "admin.campaign.create")
	last := created[len(created)-1]
	if last["caller"] != "ops" || last["campaign"] != c2.ID || last["matched"] != float64(1) {
		t.Errorf("audit admin.campaign.create: %v", last)
	}
}
