package redis_test

import (
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

const day = 24 * time.Hour

// Every key's TTL follows from the resource's times, the store's clock
// (fixed here, far from real time, which TTLs must not depend on) and the
// configured Retention and OrderTTL.
func TestTTLs(t *testing.T) {
	const retention, orderTTL = 48 * time.Hour, 2 * time.Hour
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	now := time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, srv.URL, redis.Config{Now: func() time.Time { return now }, Retention: retention, OrderTTL: orderTTL})
	ctx := t.Context()

	acct := &acme.Account{ID: "acct1", Status: acme.StatusValid, KeyThumbprint: "thumb1", CreatedAt: now}
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "example.com"}
	authz := &acme.Authorization{
		ID: storage.ScopedID("acct1", "z1"), AccountID: "acct1", Identifier: ident,
		Status: acme.StatusPending, Expires: now.Add(7 * day),
	}
	order := &acme.Order{
		ID: storage.ScopedID("acct1", "o1"), AccountID: "acct1", Status: acme.StatusPending,
		Identifiers: []acme.Identifier{ident}, AuthzIDs: []string{authz.ID}, Expires: now.Add(7 * day), CreatedAt: now,
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("CreateAccount", s.CreateAccount(ctx, acct))
	_, err := s.ConsumeNonce(ctx, "n1", now.Add(5*time.Minute))
	must("ConsumeNonce", err)
	_, err = s.ConsumeNonce(ctx, "n0", now.Add(-time.Second))
	must("ConsumeNonce expired", err)
	_, err = s.NonceKey(ctx, 1, []byte("key"), now.Add(3*time.Hour))
	must("NonceKey", err)
	must("CreateOrder", s.CreateOrder(ctx, order, []*acme.Authorization{authz}))

	const none, absent = time.Duration(-1), time.Duration(-2)
	check := func(stage string, want map[string]time.Duration) {
		t.Helper()
		for key, w := range want {
			got, err := c.PTTL(ctx, key).Result()
			must("PTTL", err)
			// Real time passes while the fixed clock does not.
			if w < 0 && got != w || w >= 0 && (got > w || got < w-time.Minute) {
				t.Errorf("%s: PTTL %s = %v, want %v", stage, key, got, w)
			}
		}
	}
	check("created", map[string]time.Duration{
		"acmed:{a:acct1}:account":                      none,
		"acmed:acctkey:thumb1":                         none,
		"acmed:nonce:n1":                               5 * time.Minute,
		"acmed:nonce:n0":                               absent,
		"acmed:noncekey:1":                             3 * time.Hour,
		"acmed:{a:acct1}:order:acct1.o1":               7*day + orderTTL,
		"acmed:{a:acct1}:authz:acct1.z1":               7*day + orderTTL,
		"acmed:{a:acct1}:orders":                       7*day + retention,
		"acmed:{a:acct1}:validauthz:dns:example.com:0": absent,
	})

	_, err = s.UpdateAuthorization(ctx, authz.ID, func(a *acme.Authorization) error {
		a.Status, a.Expires = acme.StatusValid, now.Add(30*day)
		return nil
	})
	must("UpdateAuthorization", err)
	check("authorization valid", map[string]time.Duration{
		"acmed:{a:acct1}:authz:acct1.z1":               30*day + orderTTL,
		"acmed:{a:acct1}:validauthz:dns:example.com:0": 30*day + orderTTL,
	})

	cert := &acme.Certificate{Serial: "1a", AccountID: "acct1", OrderID: order.ID, NotAfter: now.Add(90 * day)}
	must("PutCertificate", s.PutCertificate(ctx, cert))
	_, err = s.UpdateOrder(ctx, order.ID, func(o *acme.Order) error {
		o.Status, o.CertSerial = acme.StatusValid, cert.Serial
		return nil
	})
	must("UpdateOrder", err)
	check("order valid", map[string]time.Duration{
		"acmed:cert:1a":                  90*day + retention,
		"acmed:{a:acct1}:order:acct1.o1": 7*day + retention,
		// Never shortened: it already outlives the order.
		"acmed:{a:acct1}:authz:acct1.z1": 30*day + orderTTL,
	})

	_, err = s.UpdateAuthorization(ctx, authz.ID, func(a *acme.Authorization) error {
		a.Expires = now.Add(time.Hour)
		return nil
	})
	must("UpdateAuthorization", err)
	check("authorization shortened", map[string]time.Duration{
		// Never shortened: an order listing it may need it that long.
		"acmed:{a:acct1}:authz:acct1.z1": 30*day + orderTTL,
	})
}

// A second order listing an authorization reused from the first lengthens
// the authorization's life to its own.
func TestReusedAuthorizationOutlivesOrder(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	now := time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC)
	s := open(t, srv.URL, redis.Config{Now: func() time.Time { return now }, OrderTTL: time.Hour})
	ctx := t.Context()
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "example.com"}
	authz := &acme.Authorization{ID: "acct1.z1", AccountID: "acct1", Identifier: ident, Status: acme.StatusValid, Expires: now.Add(day)}
	first := &acme.Order{ID: "acct1.o1", AccountID: "acct1", AuthzIDs: []string{authz.ID}, Expires: now.Add(day)}
	second := &acme.Order{ID: "acct1.o2", AccountID: "acct1", AuthzIDs: []string{authz.ID}, Expires: now.Add(7 * day)}
	if err := s.CreateOrder(ctx, first, []*acme.Authorization{authz}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOrder(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	got := c.PTTL(ctx, "acmed:{a:acct1}:authz:acct1.z1").Val()
	if want := 7*day + time.Hour; got > want || got < want-time.Minute {
		t.Fatalf("reused authorization's PTTL = %v, want %v", got, want)
	}
}
