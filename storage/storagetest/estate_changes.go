package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// wantCounts is storage.CertCounts by wantMatch.
func wantCounts(all []*acme.Certificate, now time.Time, within []time.Duration) storage.CertCounts {
	n := func(f storage.CertFilter) int64 { f.Now = now; return int64(len(wantList(all, f))) }
	c := storage.CertCounts{
		Valid:      n(storage.CertFilter{Status: acme.CertValid}),
		Revoked:    n(storage.CertFilter{Status: acme.CertRevoked}),
		Expired:    n(storage.CertFilter{Status: acme.CertExpired}),
		Expiring:   map[time.Duration]int64{},
		NotRenewed: n(storage.CertFilter{NotRenewed: true}),
	}
	for _, d := range within {
		c.Expiring[d] = n(storage.CertFilter{Status: acme.CertValid, ExpiringWithin: d})
	}
	return c
}

// listedCounts is storage.CertCounts by ListCertificates.
func listedCounts(t *testing.T, s EstateStore, now time.Time, within []time.Duration) storage.CertCounts {
	t.Helper()
	n := func(f storage.CertFilter) int64 {
		f.Now = now
		got, _ := listAll(t, s, f, 100)
		return int64(len(got))
	}
	c := storage.CertCounts{
		Valid:      n(storage.CertFilter{Status: acme.CertValid}),
		Revoked:    n(storage.CertFilter{Status: acme.CertRevoked}),
		Expired:    n(storage.CertFilter{Status: acme.CertExpired}),
		Expiring:   map[time.Duration]int64{},
		NotRenewed: n(storage.CertFilter{NotRenewed: true}),
	}
	for _, d := range within {
		c.Expiring[d] = n(storage.CertFilter{Status: acme.CertValid, ExpiringWithin: d})
	}
	return c
}

// testEstateCounts: CountCertificates agrees with the contract and with
// ListCertificates, at times on both sides of the estate's boundaries.
func testEstateCounts(t *testing.T, open func(*testing.T) EstateStore) {
	s := open(t)
	within := []time.Duration{12 * time.Hour, day, 7 * day, 30 * day}
	got, err := s.CountCertificates(t.Context(), estateNow(), within)
	mustNot(t, "CountCertificates on an empty store", err)
	mustEqual(t, "counts of an empty store", got, storage.CertCounts{Expiring: map[time.Duration]int64{
		12 * time.Hour: 0, day: 0, 7 * day: 0, 30 * day: 0,
	}})
	loadEstate(t, s)
	all := stored(t, s, estateSerials())
	for _, at := range []time.Duration{0, -time.Second, time.Second, 12 * time.Hour, 15 * time.Hour, day + time.Second, 40 * day, 120 * day, -100 * day} {
		now := estateNow().Add(at)
		t.Run("at "+at.String(), func(t *testing.T) {
			got, err := s.CountCertificates(t.Context(), now, within)
			mustNot(t, "CountCertificates", err)
			mustEqual(t, "counts", got, wantCounts(all, now, within))
			mustEqual(t, "counts by ListCertificates", got, listedCounts(t, s, now, within))
		})
	}
}

// testReplacement: storing a certificate records what it replaces, named
// by the caller or found by the store, both ways; nothing else changes.
func testReplacement(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	now := estateNow()
	mk := func(serial, account string, nb time.Duration, ids ...acme.Identifier) *acme.Certificate {
		return estateCert{serial, account, "mtls", nb, nb + 90*day, false, ids}.cert()
	}
	xy := dns("x.example", "y.example")
	yx := dns("y.example", "x.example")
	put := func(c *acme.Certificate, viaOrder bool) { t.Helper(); putCert(t, s, c, viaOrder) }

	put(mk("a1", "acct-a", -80*day, xy...), false)
	put(mk("b1", "acct-b", -70*day, xy...), false) // another account, same names
	put(mk("a4", "acct-a", -70*day, dns("x.example")...), true)
	put(mk("a4w", "acct-a", -70*day, dns("*.x.example", "y.example")...), false)
	put(mk("a5", "acct-a", -80*day, dns("z.example")...), false)
	put(mk("a7", "acct-a", -80*day, dns("w.example")...), false)
	put(mk("a8", "acct-a", -85*day, dns("chain.example")...), false)
	notRenewed := storage.CertFilter{Now: now, NotRenewed: true}
	before, _ := listAll(t, s, notRenewed, 100)
	mustEqual(t, "not renewed before replacement", before, []string{"a8", "a1", "a5", "a7", "a4", "a4w", "b1"})

	// Found by the store: same account, same identifier set in another order.
	put(mk("a2", "acct-a", -time.Hour, yx...), true)
	// Named by the caller, for other names: that one alone is replaced,
	// not a7, the account's latest for a6's names.
	a6 := mk("a6", "acct-a", -time.Hour, dns("w.example")...)
	a6.Replaces = "a5"
	put(a6, false)
	// The latest of a chain is replaced, and only it.
	put(mk("a9", "acct-a", -30*day, dns("chain.example")...), false)
	put(mk("a10", "acct-a", -time.Hour, dns("chain.example")...), true)

	want := map[string][2]string{ // serial: Replaces, ReplacedBy
		"a1": {"", "a2"}, "a2": {"a1", ""},
		"b1": {"", ""}, "a4": {"", ""}, "a4w": {"", ""},
		"a5": {"", "a6"}, "a6": {"a5", ""}, "a7": {"", ""},
		"a8": {"", "a9"}, "a9": {"a8", "a10"}, "a10": {"a9", ""},
	}
	for serial, w := range want {
		c, err := s.Certificate(ctx, serial)
		mustNot(t, "Certificate "+serial, err)
		mustEqual(t, serial+" replaces, replaced by", [2]string{c.Replaces, c.ReplacedBy}, w)
	}
	after, _ := listAll(t, s, notRenewed, 100)
	mustEqual(t, "not renewed after replacement", after, []string{"a7", "a4", "a4w", "b1"})
	all := stored(t, s, []string{"a1", "a2", "b1", "a4", "a4w", "a5", "a6", "a7", "a8", "a9", "a10"})
	for _, f := range []storage.CertFilter{notRenewed, {Now: now}, {Now: now, Account: "acct-a"}, {Now: now.Add(60 * day), NotRenewed: true}} {
		got, _ := listAll(t, s, f, 2)
		mustEqual(t, "ListCertificates "+describe(f), got, wantList(all, f))
	}
	counts, err := s.CountCertificates(ctx, now, nil)
	mustNot(t, "CountCertificates", err)
	mustEqual(t, "not renewed count", counts.NotRenewed, int64(len(after)))
}

// testEstateRevocation: revoking moves a certificate from valid to
// revoked in queries and counts, and out of the not-renewed set.
func testEstateRevocation(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	now := estateNow()
	c := estateCert{"5eed", "acct-a", "mtls", -80 * day, 10 * day, false, dns("r.example")}.cert()
	putCert(t, s, c, false)
	within := []time.Duration{15 * day}
	check := func(when string, revoked bool) {
		t.Helper()
		all := stored(t, s, []string{"5eed"})
		mustEqual(t, when+": revoked", all[0].Revoked, revoked)
		for _, f := range []storage.CertFilter{
			{Now: now, Status: acme.CertValid}, {Now: now, Status: acme.CertRevoked},
			{Now: now, NotRenewed: true}, {Now: now, ExpiringWithin: 15 * day},
		} {
			got, _ := listAll(t, s, f, 10)
			mustEqual(t, when+": "+describe(f), got, wantList(all, f))
		}
		counts, err := s.CountCertificates(ctx, now, within)
		mustNot(t, "CountCertificates", err)
		mustEqual(t, when+": counts", counts, wantCounts(all, now, within))
	}
	check("before revocation", false)
	_, err := s.UpdateCertificate(ctx, "5eed", func(c *acme.Certificate) error { return acme.Revoke(c, 4, now) })
	mustNot(t, "UpdateCertificate", err)
	check("after revocation", true)
}

// RunEstateBackend runs the estate's clocked part: the inventory keeps a
// certificate exactly as long as its record (storage.Retention), and
// forgets it with it. b.Open's stores must be EstateStores.
func RunEstateBackend(t *testing.T, b Backend) {
	t.Run("EstateRetention", func(t *testing.T) { testEstateRetention(t, b) })
}

func testEstateRetention(t *testing.T, b Backend) {
	t0 := createdAt()
	clk := &clock{now: t0}
	keep := storage.Retention{Finished: 72 * time.Hour, Grace: 2 * time.Hour}
	s, ok := b.Open(t, clk.Now, keep).(EstateStore)
	if !ok {
		t.Fatalf("the store is no EstateStore")
	}
	ctx := t.Context()
	var serials []string
	for i, h := range []int{10, 60, 200} {
		c := newCertificate(fmt.Sprintf("e%d", i), "acct-r", "ord-r")
		c.Identifiers = dns(fmt.Sprintf("h%d.example", i))
		c.NotBefore, c.NotAfter = t0, t0.Add(time.Duration(h)*time.Hour)
		mustNot(t, "PutCertificate", s.PutCertificate(ctx, c))
		serials = append(serials, c.Serial)
	}
	_, err := s.UpdateCertificate(ctx, "e1", func(c *acme.Certificate) error { return acme.Revoke(c, 1, t0) })
	mustNot(t, "UpdateCertificate", err)
	camp := &acme.Campaign{ID: "camp-r", CreatedAt: t0, WindowStart: t0.Add(time.Second), WindowEnd: t0.Add(time.Minute)}
	n, err := s.CreateCampaign(ctx, camp, storage.CertFilter{Now: t0})
	mustNot(t, "CreateCampaign", err)
	mustEqual(t, "matched", n, 2)

	for _, tc := range []struct {
		at   time.Duration
		kept []string
	}{
		{10*time.Hour + 72*time.Hour - time.Minute, serials},
		{10*time.Hour + 72*time.Hour + time.Minute, serials[1:]},
		{60*time.Hour + 72*time.Hour + time.Minute, serials[2:]},
		{200*time.Hour + 72*time.Hour + time.Minute, nil},
	} {
		now := t0.Add(tc.at)
		clk.set(now)
		b.Expire(t, s, t0, now)
		kept := []string{}
		for _, serial := range serials {
			if _, err := s.Certificate(ctx, serial); err == nil {
				kept = append(kept, serial)
			}
		}
		mustEqual(t, fmt.Sprintf("certificates kept at +%v", tc.at), kept, append([]string{}, tc.kept...))
		got, _ := listAll(t, s, storage.CertFilter{Now: now}, 2)
		mustEqual(t, fmt.Sprintf("listed at +%v", tc.at), got, append([]string{}, tc.kept...))
		all := stored(t, s, tc.kept)
		counts, err := s.CountCertificates(ctx, now, []time.Duration{day})
		mustNot(t, "CountCertificates", err)
		mustEqual(t, fmt.Sprintf("counts at +%v", tc.at), counts, wantCounts(all, now, []time.Duration{day}))
	}
}
