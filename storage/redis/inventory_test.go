package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// estateCert is certificate i of a synthetic estate at now: account i%50,
// profile by i%3, one name, 90 days, notAfters spread evenly over
// (now-5d, now+90d), whatever the estate's size, so about a third are in
// their renewal window.
func estateCert(i int, now time.Time, chain []byte) *acme.Certificate {
	profiles := [...]string{"mtls", "server", "shortlived"}
	const slots = 95_000 // of 86.4s each
	na := now.Add(-5 * day).Add(time.Duration(i*7919%slots) * (95 * day / slots)).Add(time.Duration(i%1000) * time.Millisecond)
	return &acme.Certificate{
		Serial: fmt.Sprintf("%032x", i+1), AccountID: fmt.Sprintf("acct%06d", i%50), OrderID: fmt.Sprintf("order%d", i),
		ChainPEM:    chain,
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: fmt.Sprintf("host%d.site%d.example.com", i, i%100)}},
		NotBefore:   na.Add(-90 * day), NotAfter: na, Profile: profiles[i%3],
	}
}

// putMany stores certificates first..first+n-1 of the estate with
// workers PutCertificate calls at once.
func putMany(t testing.TB, s *redis.Store, first, n, workers int, now time.Time, chain []byte) {
	t.Helper()
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := s.PutCertificate(ctx, estateCert(i, now, chain)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := first; i < first+n; i++ {
		select {
		case next <- i:
		case err := <-errs:
			close(next)
			wg.Wait()
			t.Fatalf("PutCertificate: %v", err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatalf("PutCertificate: %v", err)
	default:
	}
}

// commandCalls sums INFO commandstats calls of the named commands; those
// run by scripts count too.
func commandCalls(t testing.TB, c goredis.UniversalClient, names ...string) int64 {
	t.Helper()
	info, err := c.Info(context.WithoutCancel(t.Context()), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\r\n") {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":calls="); ok {
				v, _, _ := strings.Cut(rest, ",")
				i, _ := strconv.ParseInt(v, 10, 64)
				n += i
			}
		}
	}
	return n
}

// TestInventoryReadsBounded: each query reads about as many entries as it
// returns, however large the estate: entries are read with HGET of the
// entry hash (and records with GET), counted by the server.
func TestInventoryReadsBounded(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	s := open(t, srv.URL, redis.Config{})
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	const n = 4000
	putMany(t, s, 0, n, 16, now, []byte("chain"))
	// One not-renewed query first: it promotes what entered its window
	// since the certificates were stored, once.
	if _, _, err := s.ListCertificates(ctx, storage.CertFilter{Now: now.Add(time.Minute), NotRenewed: true}, "", 10); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name  string
		f     storage.CertFilter
		limit int
	}{
		{"expiring within 24h", storage.CertFilter{ExpiringWithin: 24 * time.Hour}, 10},
		{"not renewed", storage.CertFilter{NotRenewed: true}, 10},
		{"valid", storage.CertFilter{Status: acme.CertValid}, 10},
		{"expired", storage.CertFilter{Status: acme.CertExpired}, 10},
		{"SAN suffix of one site", storage.CertFilter{SANSuffix: "site7.example.com"}, 10},
		{"SAN suffix of all", storage.CertFilter{SANSuffix: "example.com"}, 10},
		{"account", storage.CertFilter{Account: "acct000007"}, 10},
		{"account and profile, expiring", storage.CertFilter{Account: "acct000007", Profile: "server", ExpiringWithin: 30 * day}, 5},
		{"serials", storage.CertFilter{Serials: []string{fmt.Sprintf("%032x", 17), fmt.Sprintf("%032x", 3001)}}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.f.Now = now.Add(time.Minute)
			before := commandCalls(t, c, "hget", "get")
			page, next, err := s.ListCertificates(ctx, tc.f, "", tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			read := commandCalls(t, c, "hget", "get") - before
			t.Logf("%d returned, %d entries and records read", len(page), read)
			if len(page) == 0 || (len(page) < tc.limit && next != "") {
				t.Fatalf("page of %d, next %q", len(page), next)
			}
			// An entry and a record per result, the one after the page,
			// and a SAN suffix's matches (the site's 40) at most.
			if bound := int64(2*tc.limit + 50); read > bound {
				t.Errorf("read %d entries and records for %d results of %d certificates, want at most %d", read, len(page), n, bound)
			}
		})
	}
	before := commandCalls(t, c, "hget", "get", "zrange", "zrangebyscore")
	counts, err := s.CountCertificates(ctx, now.Add(time.Minute), []time.Duration{24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if read := commandCalls(t, c, "hget", "get", "zrange", "zrangebyscore") - before; read > 10 {
		t.Errorf("CountCertificates read %d entries, want counts only", read)
	}
	if counts.Valid+counts.Expired != n || counts.NotRenewed == 0 || counts.Expiring[24*time.Hour] == 0 {
		t.Errorf("counts %+v of %d certificates", counts, n)
	}
}

// TestInventoryDropsGoneRecords: a record that expired before its entry
// was trimmed is not listed, and its entry goes.
func TestInventoryDropsGoneRecords(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	s := open(t, srv.URL, redis.Config{})
	ctx := t.Context()
	now := time.Now()
	putMany(t, s, 0, 5, 1, now, []byte("chain"))
	gone := estateCert(2, now, nil).Serial
	if err := c.Del(ctx, "acmed:cert:"+gone).Err(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for cursor := ""; ; {
		page, next, err := s.ListCertificates(ctx, storage.CertFilter{Now: now}, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, cert := range page {
			got = append(got, cert.Serial)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(got) != 4 || strings.Contains(strings.Join(got, ","), gone) {
		t.Errorf("listed %q, want the four left", got)
	}
	if c.HExists(ctx, "acmed:{inv}:meta", gone).Val() || c.ZScore(ctx, "acmed:{inv}:exp", gone).Err() == nil {
		t.Errorf("the entry of %s stayed", gone)
	}
}

// TestClusterIssuanceUndone: on a Cluster a certificate is stored, and
// indexed, before the order that names it; an order write that does not
// happen takes both back, and what the certificate replaced is not
// replaced after all.
func TestClusterIssuanceUndone(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	url := redistest.StartCluster(t).URL
	flush(t, client(t, url))
	s := open(t, url, redis.Config{})
	ctx := t.Context()
	now := time.Now()
	ids := []acme.Identifier{{Type: acme.IdentifierDNS, Value: "undo.example"}}
	cert := func(serial string) *acme.Certificate {
		return &acme.Certificate{Serial: serial, AccountID: "acct", Identifiers: ids, NotBefore: now.Add(-80 * day), NotAfter: now.Add(10 * day)}
	}
	if err := s.PutCertificate(ctx, cert("0a")); err != nil {
		t.Fatal(err)
	}
	o := &acme.Order{ID: storage.ScopedID("acct", "o1"), AccountID: "acct", Status: acme.StatusProcessing, Identifiers: ids, Expires: now.Add(time.Hour)}
	if err := s.CreateOrder(ctx, o, nil); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	_, err := s.UpdateOrder(ctx, o.ID, func(*acme.Order) error { return refused }, storage.WithCertificate(cert("0b")))
	if !errors.Is(err, refused) {
		t.Fatalf("UpdateOrder: %v", err)
	}
	if _, err := s.Certificate(ctx, "0b"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the undone certificate: %v, want ErrNotFound", err)
	}
	list := func(f storage.CertFilter) []string {
		t.Helper()
		f.Now = now
		page, _, err := s.ListCertificates(ctx, f, "", 10)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range page {
			out = append(out, c.Serial+">"+c.ReplacedBy)
		}
		return out
	}
	if got := fmt.Sprint(list(storage.CertFilter{})); got != "[0a>]" {
		t.Errorf("listed %s, want 0a alone, not replaced", got)
	}
	if got := fmt.Sprint(list(storage.CertFilter{NotRenewed: true})); got != "[0a>]" {
		t.Errorf("not renewed: %s, want 0a", got)
	}
	// The account's latest for the names is 0a again: 0c replaces it.
	if err := s.PutCertificate(ctx, cert("0c")); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(list(storage.CertFilter{})); got != "[0a>0c 0c>]" {
		t.Errorf("after a real replacement: %s", got)
	}
}

// TestInventoryPromotionInChunks: a campaign gives thousands of
// certificates one window start; the query after it opens promotes them
// into the not-renewed set over several calls, resuming within that one
// score, and lists and counts each exactly once.
func TestInventoryPromotionInChunks(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	s := open(t, srv.URL, redis.Config{})
	ctx := t.Context()
	now := time.Now().Truncate(time.Second)
	const n = 5000 // more than two of a script call's budget
	putMany(t, s, 0, n, 16, now, []byte("chain"))
	camp := &acme.Campaign{ID: "all", CreatedAt: now, WindowStart: now.Add(time.Hour), WindowEnd: now.Add(time.Hour + time.Minute)}
	matched, err := s.CreateCampaign(ctx, camp, storage.CertFilter{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if matched < 4000 {
		t.Fatalf("the campaign matched %d", matched)
	}
	counts, err := s.CountCertificates(ctx, now.Add(time.Minute), nil)
	if err != nil {
		t.Fatal(err)
	}
	if counts.NotRenewed != 0 {
		t.Errorf("not renewed before the campaign's window: %d, want 0", counts.NotRenewed)
	}
	at := now.Add(time.Hour + time.Second)
	want := 0 // those still unexpired then
	for i := range n {
		if estateCert(i, now, nil).NotAfter.After(at) {
			want++
		}
	}
	seen := map[string]bool{}
	for cursor := ""; ; {
		page, next, err := s.ListCertificates(ctx, storage.CertFilter{Now: at, NotRenewed: true}, cursor, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, cert := range page {
			if seen[cert.Serial] || cert.CampaignID != "all" {
				t.Fatalf("%s listed twice, or not in the campaign (%q)", cert.Serial, cert.CampaignID)
			}
			seen[cert.Serial] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != want {
		t.Errorf("listed %d not renewed, want %d", len(seen), want)
	}
	counts, err = s.CountCertificates(ctx, at, nil)
	if err != nil {
		t.Fatal(err)
	}
	if counts.NotRenewed != int64(want) {
		t.Errorf("counted %d not renewed, want %d", counts.NotRenewed, want)
	}
	_, _, pending, err := s.CampaignPending(ctx, "all", "", 10)
	if err != nil || pending != matched {
		t.Errorf("CampaignPending: %d, %v; want %d", pending, err, matched)
	}
}
