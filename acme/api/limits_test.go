package api_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

type limitedStore interface {
	authority.Store
	storage.Limiter
}

// startLimited serves the API over each store with only the limit given
// (all others off); the store is the limiter, as in acmed serve.
func startLimited(t *testing.T, backend, name, value string) *env {
	t.Helper()
	var store limitedStore
	switch backend {
	case "embedded":
		s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		store = s
	case "redis":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := redis.Open(ctx, redistest.Start(t).URL, redis.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		store = s
	}
	var limits authority.Limits
	l := storage.Limit{}
	count, period, _ := strings.Cut(value, "/")
	l.Count, _ = strconv.ParseInt(count, 10, 64)
	l.Period, _ = time.ParseDuration(period)
	if err := limits.Set(name, l); err != nil {
		t.Fatal(err)
	}
	return startEnvWith(t, store, nil, nil, func(c *authority.Config) {
		c.Limiter, c.Limits = store, limits
	})
}

// wantRateLimited checks the whole answer to a request over a limit.
func wantRateLimited(t *testing.T, r *response, limit string, retryAfter int) {
	t.Helper()
	problemType(t, r, http.StatusTooManyRequests, "rateLimited")
	if p := r.problem(t); !strings.Contains(p.Detail, limit) {
		t.Fatalf("detail %q does not name %s", p.Detail, limit)
	}
	if got := r.header.Get("Retry-After"); got != strconv.Itoa(retryAfter) {
		t.Fatalf("Retry-After %q, want %d", got, retryAfter)
	}
}

func TestRateLimits(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			t.Run("new-accounts-per-ip", func(t *testing.T) {
				e := startLimited(t, backend, authority.LimitNewAccountsPerIP, "2/1h")
				e.newClient().register()
				e.newClient().register()
				c := e.newClient()
				r := c.post(e.url("/acme/new-account"), map[string]any{"termsOfServiceAgreed": true}, jwsOpts{})
				wantRateLimited(t, r, authority.LimitNewAccountsPerIP, 1800)
				e.clock.Add(30 * time.Minute)
				c.register()
			})
			t.Run("new-orders-per-account", func(t *testing.T) {
				e := startLimited(t, backend, authority.LimitNewOrdersPerAccount, "2/1h")
				c := e.newClient()
				c.register()
				c.newOrder("a.example")
				c.newOrder("b.example")
				r := c.post(e.url("/acme/new-order"), orderPayload("c.example"), jwsOpts{})
				wantRateLimited(t, r, authority.LimitNewOrdersPerAccount, 1800)
				// The refused order was not written.
				var list struct {
					Orders []string `json:"orders"`
				}
				if c.must(http.StatusOK, c.kid+"/orders", nil, &list); len(list.Orders) != 2 {
					t.Fatalf("account lists %d orders after a refused one, want 2", len(list.Orders))
				}
				// Another account has its own limit.
				other := e.newClient()
				other.register()
				other.newOrder("c.example")
				e.clock.Add(30 * time.Minute)
				c.newOrder("c.example")
			})
			t.Run("pending-authorizations-per-account", func(t *testing.T) {
				// A cap of 3 over the 24h pending lifetime: one every 8h.
				e := startLimited(t, backend, authority.LimitPendingAuthorizationsPerAccount, "3")
				c := e.newClient()
				c.register()
				o := c.newOrder("a.example", "b.example")
				r := c.post(e.url("/acme/new-order"), orderPayload("c.example", "d.example"), jwsOpts{})
				wantRateLimited(t, r, authority.LimitPendingAuthorizationsPerAccount, 8*3600)
				// Validated, they are pending no more: all 3 are free again,
				// and valid authorizations reused do not count.
				c.authorize(o)
				c.newOrder("a.example", "b.example", "c.example", "d.example", "e.example")
				wantRateLimited(t, c.post(e.url("/acme/new-order"), orderPayload("f.example"), jwsOpts{}),
					authority.LimitPendingAuthorizationsPerAccount, 8*3600)
			})
			t.Run("failed-validations-per-account-identifier", func(t *testing.T) {
				e := startLimited(t, backend, authority.LimitFailedValidationsPerAccountIdentifier, "1/1h")
				c := e.newClient()
				c.register()
				o := c.newOrder("fail.example")
				var az authz
				c.must(http.StatusOK, o.Authorizations[0], nil, &az)
				// No token is served: the http-01 validation fails.
				c.must(http.StatusOK, az.Challenges[0].URL, map[string]any{}, nil)
				c.waitAuthz(o.Authorizations[0], "invalid")
				// The failure is counted right after it is recorded.
				r := pollNewOrder(t, c, "fail.example")
				wantRateLimited(t, r, authority.LimitFailedValidationsPerAccountIdentifier, 3600)
				c.newOrder("other.example")
			})
			t.Run("certificates-per-identifier-set", func(t *testing.T) {
				e := startLimited(t, backend, authority.LimitCertificatesPerIdentifierSet, "1/1h")
				c := e.newClient()
				c.register()
				o := c.newOrder("a.example", "b.example")
				c.authorize(o)
				var fin order
				c.must(http.StatusOK, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "a.example", "b.example")}, &fin)
				if fin.Status != "valid" {
					t.Fatalf("finalize: %+v", fin)
				}
				// The same set in another order, from another account too.
				wantRateLimited(t, c.post(e.url("/acme/new-order"), orderPayload("b.example", "a.example"), jwsOpts{}),
					authority.LimitCertificatesPerIdentifierSet, 3600)
				other := e.newClient()
				other.register()
				wantRateLimited(t, other.post(e.url("/acme/new-order"), orderPayload("a.example", "b.example"), jwsOpts{}),
					authority.LimitCertificatesPerIdentifierSet, 3600)
				c.newOrder("a.example") // another set
			})
		})
	}
}

func orderPayload(names ...string) map[string]any {
	ids := make([]map[string]string, len(names))
	for i, n := range names {
		ids[i] = map[string]string{"type": "dns", "value": n}
	}
	return map[string]any{"identifiers": ids}
}

// pollNewOrder asks for an order of names until it is refused, within a
// deadline: what it waits for is counted by a job just after the result
// the client saw was recorded.
func pollNewOrder(t *testing.T, c *client, names ...string) *response {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := c.post(c.e.url("/acme/new-order"), orderPayload(names...), jwsOpts{})
		if r.status != http.StatusCreated || time.Now().After(deadline) {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
}
