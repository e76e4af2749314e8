package storagetest

import (
	"slices"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// campaignMatch is what CreateCampaign matches: f, and unexpired, not
// revoked and not replaced.
func campaignMatch(all []*acme.Certificate, f storage.CertFilter) []string {
	var m []*acme.Certificate
	for _, c := range all {
		if wantMatch(c, f) && c.Status(f.Now) == acme.CertValid && c.ReplacedBy == "" {
			m = append(m, c)
		}
	}
	var serials []string
	for _, c := range m {
		serials = append(serials, c.Serial)
	}
	slices.Sort(serials)
	return serials
}

// pending pages through CampaignPending with limit, checking the count
// is the same on every page, and returns the serials sorted.
func pending(t *testing.T, s EstateStore, id string, limit int) []string {
	t.Helper()
	var got []string
	cursor, count := "", -1
	for pages := 0; ; pages++ {
		if pages > len(estate)+5 {
			t.Fatalf("CampaignPending(%s, limit %d) did not end after %d pages", id, limit, pages)
		}
		serials, next, n, err := s.CampaignPending(t.Context(), id, cursor, limit)
		mustNot(t, "CampaignPending "+id, err)
		if len(serials) > limit {
			t.Fatalf("CampaignPending(%s, limit %d) returned %d", id, limit, len(serials))
		}
		if count >= 0 && n != count {
			t.Fatalf("CampaignPending(%s) counted %d, then %d", id, count, n)
		}
		count = n
		got = append(got, serials...)
		if next == "" {
			break
		}
		cursor = next
	}
	slices.Sort(got)
	if len(got) != count {
		t.Fatalf("CampaignPending(%s) counted %d, listed %q", id, count, got)
	}
	return got
}

// testCampaigns: a campaign moves the window of what it matches, and
// only that, records itself, and tracks what is still pending.
func testCampaigns(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	now := estateNow()
	loadEstate(t, s)
	before := stored(t, s, estateSerials())

	camp1 := &acme.Campaign{
		ID: "camp-1", CreatedAt: now, CreatedBy: "admin", Filter: "--san-suffix example.com",
		ExplanationURL: "https://status.example.com/rotation",
		WindowStart:    now.Add(time.Second), WindowEnd: now.Add(time.Minute),
	}
	f1 := storage.CertFilter{Now: now, SANSuffix: "example.com"}
	want1 := campaignMatch(before, f1)
	mustEqual(t, "fixture: what camp-1 matches", want1, []string{"c001", "c002", "c003", "c006", "c00d"})
	n, err := s.CreateCampaign(ctx, camp1, f1)
	mustNot(t, "CreateCampaign", err)
	mustEqual(t, "matched", n, len(want1))
	mustEqual(t, "Campaign.Matched", camp1.Matched, len(want1))
	got, err := s.Campaign(ctx, "camp-1")
	mustNot(t, "Campaign", err)
	mustEqual(t, "Campaign", got, camp1)

	after := stored(t, s, estateSerials())
	for i, c := range after {
		want := *before[i]
		if slices.Contains(want1, c.Serial) {
			want.RenewAfter, want.RenewBefore, want.CampaignID = camp1.WindowStart, camp1.WindowEnd, "camp-1"
		}
		mustEqual(t, "certificate after the campaign", c, &want)
	}
	for _, f := range []storage.CertFilter{
		{Now: now, NotRenewed: true}, {Now: now.Add(time.Second), NotRenewed: true},
		{Now: now.Add(time.Second), NotRenewed: true, Account: "acct-b"},
		{Now: now.Add(time.Second), NotRenewed: true, ExpiringWithin: 15 * day},
	} {
		got, _ := listAll(t, s, f, 2)
		mustEqual(t, "after the campaign: "+describe(f), got, wantList(after, f))
	}
	counts, err := s.CountCertificates(ctx, now.Add(time.Second), nil)
	mustNot(t, "CountCertificates", err)
	mustEqual(t, "not renewed count after the campaign", counts.NotRenewed, int64(len(wantList(after, storage.CertFilter{Now: now.Add(time.Second), NotRenewed: true}))))

	for _, limit := range []int{1, 2, 10} {
		mustEqual(t, "pending of camp-1", pending(t, s, "camp-1", limit), want1)
	}
	// Replaced, found by the store and named by the caller.
	putCert(t, s, estateCert{"d001", "acct-a", "mtls", -time.Hour, 90 * day, false, dns("www.example.com")}.cert(), true)
	named := estateCert{"d003", "acct-b", "server", -time.Hour, 90 * day, false, dns("*.example.com", "example.com")}.cert()
	named.Replaces = "c003"
	putCert(t, s, named, false)
	for _, limit := range []int{1, 2, 10} {
		mustEqual(t, "pending of camp-1 after replacements", pending(t, s, "camp-1", limit), []string{"c002", "c006", "c00d"})
	}

	camp2 := &acme.Campaign{ID: "camp-2", CreatedAt: now.Add(time.Hour), Filter: "--account acct-c --profile server",
		WindowStart: now.Add(time.Hour + time.Second), WindowEnd: now.Add(time.Hour + time.Minute)}
	n, err = s.CreateCampaign(ctx, camp2, storage.CertFilter{Now: now.Add(time.Hour), Account: "acct-c", Profile: "server"})
	mustNot(t, "CreateCampaign camp-2", err)
	mustEqual(t, "camp-2 matched", n, 2)
	mustEqual(t, "pending of camp-2", pending(t, s, "camp-2", 1), []string{"c008", "c009"})
	// By serial: the revoked, the expired and the replaced ones are not
	// matched.
	camp3 := &acme.Campaign{ID: "camp-3", CreatedAt: now.Add(2 * time.Hour), Filter: "--serial ...",
		WindowStart: now.Add(2*time.Hour + time.Second), WindowEnd: now.Add(2*time.Hour + time.Minute)}
	n, err = s.CreateCampaign(ctx, camp3, storage.CertFilter{Now: now.Add(2 * time.Hour), Serials: []string{"c007", "c004", "c00a", "d003", "c001"}})
	mustNot(t, "CreateCampaign camp-3", err)
	mustEqual(t, "camp-3 matched", n, 2)
	mustEqual(t, "pending of camp-3", pending(t, s, "camp-3", 5), []string{"c00a", "d003"})
	c, err := s.Certificate(ctx, "d003")
	mustNot(t, "Certificate", err)
	mustEqual(t, "d003's window", [3]any{c.RenewAfter, c.RenewBefore, c.CampaignID}, [3]any{camp3.WindowStart, camp3.WindowEnd, "camp-3"})

	list, err := s.ListCampaigns(ctx)
	mustNot(t, "ListCampaigns", err)
	mustEqual(t, "ListCampaigns", list, []*acme.Campaign{camp3, camp2, camp1})
	_, err = s.Campaign(ctx, "camp-none")
	mustBe(t, "Campaign of an unknown ID", err, storage.ErrNotFound)
	_, _, _, err = s.CampaignPending(ctx, "camp-none", "", 10)
	mustBe(t, "CampaignPending of an unknown ID", err, storage.ErrNotFound)
}

// testCampaignNothing: a campaign that matches nothing records nothing and
// changes nothing.
func testCampaignNothing(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	now := estateNow()
	loadEstate(t, s)
	before := stored(t, s, estateSerials())
	for _, f := range []storage.CertFilter{
		{Now: now, SANSuffix: "nothing.test"},
		{Now: now, Serials: []string{"c007", "c004", "c00c", "ffff"}}, // revoked, expired, both, unknown
		{Now: now.Add(200 * day)},
	} {
		c := &acme.Campaign{ID: "camp-" + describe(f), CreatedAt: now, WindowStart: now.Add(time.Second), WindowEnd: now.Add(time.Minute)}
		n, err := s.CreateCampaign(ctx, c, f)
		mustNot(t, "CreateCampaign "+describe(f), err)
		mustEqual(t, "matched by "+describe(f), n, 0)
		_, err = s.Campaign(ctx, c.ID)
		mustBe(t, "Campaign that matched nothing", err, storage.ErrNotFound)
	}
	list, err := s.ListCampaigns(ctx)
	mustNot(t, "ListCampaigns", err)
	if len(list) != 0 {
		t.Fatalf("ListCampaigns = %+v, want none", list)
	}
	mustEqual(t, "certificates", stored(t, s, estateSerials()), before)
}

// testLeases: one holder at a time; the holder extends; another takes the
// lease once it has run out. A lease runs out by real time, so the wait
// for it polls, for a bounded time.
func testLeases(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	const ttl = 200 * time.Millisecond
	try := func(name, holder string, ttl time.Duration, want bool) {
		t.Helper()
		got, err := s.TryLease(ctx, name, holder, ttl)
		mustNot(t, "TryLease", err)
		if got != want {
			t.Fatalf("TryLease(%s, %s) = %v, want %v", name, holder, got, want)
		}
	}
	try("alerts", "r1", ttl, true)
	try("alerts", "r2", ttl, false)
	try("alerts", "r1", ttl, true) // extended
	try("alerts", "r2", ttl, false)
	try("other", "r2", time.Hour, true) // leases are independent
	try("other", "r1", time.Hour, false)

	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := s.TryLease(ctx, "alerts", "r2", time.Hour)
		mustNot(t, "TryLease", err)
		if got {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r2 did not get the lease r1 stopped extending within %v", waitTimeout)
		}
		<-tick.C
	}
	try("alerts", "r1", ttl, false)
	try("alerts", "r2", time.Hour, true)
	try("other", "r2", time.Hour, true)
}

// testAlertOutbox: an alert is queued once per event and serial, one
// delivery per webhook, each due at the alert's DetectedAt; deliveries
// come when due, retry later, and leave when delivered.
func testAlertOutbox(t *testing.T, open func(*testing.T) EstateStore) {
	s, ctx := open(t), t.Context()
	now := estateNow()
	a1 := acme.Alert{Event: acme.AlertNotRenewed, Serial: "c001", Identifiers: dns("www.example.com"),
		Account: "acct-a", NotAfter: now.Add(10 * day), DetectedAt: now}
	a2 := acme.Alert{Event: acme.AlertCampaignPending, Serial: "c001", Identifiers: dns("www.example.com"),
		Account: "acct-a", NotAfter: now.Add(10 * day), CampaignID: "camp-1", DetectedAt: now.Add(time.Minute)}
	a3 := acme.Alert{Event: acme.AlertNotRenewed, Serial: "c002", Identifiers: dns("api.example.com", "example.com"),
		Account: "acct-a", NotAfter: now.Add(12 * time.Hour), DetectedAt: now.Add(2 * time.Minute)}
	hooks := []string{"https://hooks.example/a", "https://hooks.example/b"}
	queue := func(a acme.Alert, urls []string, want bool) {
		t.Helper()
		got, err := s.QueueAlert(ctx, a, urls)
		mustNot(t, "QueueAlert", err)
		mustEqual(t, "QueueAlert "+a.Event+" "+a.Serial+" queued", got, want)
	}
	queue(a1, hooks, true)
	again := a1
	again.DetectedAt = now.Add(time.Hour)
	queue(again, hooks[:1], false)
	queue(a2, hooks, true)
	queue(a3, hooks[:1], true)

	type key struct{ event, serial, url string }
	due := func(at time.Time, limit int) map[key]storage.AlertDelivery {
		t.Helper()
		list, err := s.DueAlerts(ctx, at, limit)
		mustNot(t, "DueAlerts", err)
		if len(list) > limit {
			t.Fatalf("DueAlerts(limit %d) returned %d", limit, len(list))
		}
		m := map[key]storage.AlertDelivery{}
		ids := map[string]bool{}
		for _, d := range list {
			if d.ID == "" || ids[d.ID] {
				t.Fatalf("DueAlerts: delivery ID %q empty or twice in %+v", d.ID, list)
			}
			ids[d.ID] = true
			if d.Due.After(at) {
				t.Fatalf("DueAlerts(%v) returned one due at %v", at, d.Due)
			}
			m[key{d.Alert.Event, d.Alert.Serial, d.URL}] = d
		}
		return m
	}
	mustEqual(t, "due before any", len(due(now.Add(-time.Second), 10)), 0)
	mustEqual(t, "due at a1's detection", len(due(now, 10)), 2)
	mustEqual(t, "due with limit 3", len(due(now.Add(time.Hour), 3)), 3)
	all := due(now.Add(time.Hour), 10)
	want := map[key]acme.Alert{
		{a1.Event, "c001", hooks[0]}: a1, {a1.Event, "c001", hooks[1]}: a1,
		{a2.Event, "c001", hooks[0]}: a2, {a2.Event, "c001", hooks[1]}: a2,
		{a3.Event, "c002", hooks[0]}: a3,
	}
	mustEqual(t, "deliveries", len(all), len(want))
	for k, a := range want {
		d, ok := all[k]
		if !ok {
			t.Fatalf("no delivery of %+v in %+v", k, all)
		}
		mustEqual(t, "delivery", d, storage.AlertDelivery{ID: d.ID, URL: k.url, Alert: a, Due: a.DetectedAt})
	}

	retried := all[key{a1.Event, "c001", hooks[0]}]
	mustNot(t, "AlertRetry", s.AlertRetry(ctx, retried.ID, now.Add(10*time.Minute), 1))
	if _, ok := due(now.Add(5*time.Minute), 10)[key{a1.Event, "c001", hooks[0]}]; ok {
		t.Fatalf("a delivery retried for +10m is due at +5m")
	}
	retried.Due, retried.Attempts = now.Add(10*time.Minute), 1
	mustEqual(t, "retried delivery", due(now.Add(10*time.Minute), 10)[key{a1.Event, "c001", hooks[0]}], retried)

	delivered := all[key{a1.Event, "c001", hooks[1]}]
	mustNot(t, "AlertDelivered", s.AlertDelivered(ctx, delivered.ID))
	mustNot(t, "AlertDelivered again", s.AlertDelivered(ctx, delivered.ID))
	_ = s.AlertRetry(ctx, delivered.ID, now, 2) // must not bring it back
	left := due(now.Add(time.Hour), 10)
	if _, ok := left[key{a1.Event, "c001", hooks[1]}]; ok || len(left) != 4 {
		t.Fatalf("after one delivery: %+v", left)
	}
	for _, d := range left {
		mustNot(t, "AlertDelivered", s.AlertDelivered(ctx, d.ID))
	}
	mustEqual(t, "due after all delivered", len(due(now.Add(time.Hour), 10)), 0)
	queue(a1, hooks, false) // once per event and serial, delivered or not
	queue(a3, hooks, false)
}
