package api_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// redisEnv is env over a real Redis, with a plain client that can delete
// records behind acmed's back, as an expiry or an operator would.
type redisEnv struct {
	*env
	rdb  goredis.UniversalClient
	logs *syncBuffer
}

func newRedisEnv(t *testing.T, srv *redistest.Server, wrap func(*redis.Store) storeUnderTest) *redisEnv {
	t.Helper()
	store, err := redis.Open(t.Context(), srv.URL, redis.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { rdb.Close() })
	var s storeUnderTest = store
	if wrap != nil {
		s = wrap(store)
	}
	logs := &syncBuffer{}
	e := startEnv(t, s, store.Ping, slog.New(slog.NewTextHandler(logs, nil)))
	return &redisEnv{env: e, rdb: rdb, logs: logs}
}

// storeUnderTest is what the authority takes.
type storeUnderTest interface {
	storage.AccountList
	storage.Accounts
	storage.Orders
	storage.Authorizations
	storage.Certificates
	storage.Nonces
	storage.Jobs
	storage.EABKeys
	storage.BlockedKeys
}

// drop deletes the record whose key ends with suffix (e.g. ":authz:ID"),
// failing the test unless exactly one key matched.
func (e *redisEnv) drop(t *testing.T, suffix string) {
	t.Helper()
	ctx := t.Context()
	var keys []string
	iter := e.rdb.Scan(ctx, 0, "acmed:*"+suffix, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("keys ending %q: %v, want exactly one", suffix, keys)
	}
	if err := e.rdb.Del(ctx, keys[0]).Err(); err != nil {
		t.Fatal(err)
	}
}

func lastSegment(u string) string { return u[strings.LastIndex(u, "/")+1:] }

// A record missing anywhere on a request's path is the 404 malformed
// problem, never a 500: an order whose authorization is gone, an order
// the account's list still names, a certificate whose record is gone.
func TestMissingRecordsAre404(t *testing.T) {
	e := newRedisEnv(t, redistest.Start(t), nil)

	t.Run("order whose authorization is gone", func(t *testing.T) {
		c := e.newClient()
		c.register()
		o := c.newOrder("authz-gone.example")
		e.drop(t, ":authz:"+lastSegment(o.Authorizations[0]))
		problemType(t, c.post(o.url, nil, jwsOpts{}), http.StatusNotFound, "malformed")
		problemType(t, c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "authz-gone.example")}, jwsOpts{}),
			http.StatusNotFound, "malformed")
		problemType(t, c.post(o.Authorizations[0], nil, jwsOpts{}), http.StatusNotFound, "malformed")
	})

	t.Run("order the account's list names is gone", func(t *testing.T) {
		c := e.newClient()
		c.register()
		o := c.newOrder("order-gone.example")
		e.drop(t, ":order:"+lastSegment(o.url))
		c.must(http.StatusOK, c.kid+"/orders", nil, nil)
		problemType(t, c.post(o.url, nil, jwsOpts{}), http.StatusNotFound, "malformed")
		problemType(t, c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "order-gone.example")}, jwsOpts{}),
			http.StatusNotFound, "malformed")
	})

	t.Run("order gone between authorization and finalize", func(t *testing.T) {
		c := e.newClient()
		c.register()
		o := c.newOrder("finalize-gone.example")
		c.authorize(o)
		e.drop(t, ":order:"+lastSegment(o.url))
		problemType(t, c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "finalize-gone.example")}, jwsOpts{}),
			http.StatusNotFound, "malformed")
	})

	t.Run("certificate record gone", func(t *testing.T) {
		c := e.newClient()
		c.register()
		o := c.newOrder("cert-gone.example")
		c.authorize(o)
		var fin order
		c.must(http.StatusOK, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "cert-gone.example")}, &fin)
		if fin.Certificate == "" {
			t.Fatalf("finalize gave no certificate: %+v", fin)
		}
		chain := c.must(http.StatusOK, fin.Certificate, nil, nil).body
		e.drop(t, "cert:"+lastSegment(fin.Certificate))
		problemType(t, c.post(fin.Certificate, nil, jwsOpts{}), http.StatusNotFound, "malformed")
		problemType(t, c.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": leafDER(t, chain)}, jwsOpts{}),
			http.StatusNotFound, "malformed")
	})
}

// contended is the Redis store with a rival writer that, once on, changes
// every order between the authority's read and its write, so each
// compare-and-set loses.
type contended struct {
	*redis.Store
	rival *redis.Store
	on    atomic.Bool
}

func (s *contended) UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error, opts ...storage.Option) (*acme.Order, error) {
	if !s.on.Load() {
		return s.Store.UpdateOrder(ctx, id, fn, opts...)
	}
	return s.Store.UpdateOrder(ctx, id, func(o *acme.Order) error {
		if _, err := s.rival.UpdateOrder(ctx, id, func(r *acme.Order) error {
			r.CreatedAt = r.CreatedAt.Add(1)
			return nil
		}); err != nil {
			return err
		}
		return fn(o)
	}, opts...)
}

// A compare-and-set that loses every retry reaches the client as 503 +
// Retry-After, a serverInternal problem: not a 500, not a conflict.
func TestLostRaceIs503(t *testing.T) {
	srv := redistest.Start(t)
	var hot *contended
	e := newRedisEnv(t, srv, func(s *redis.Store) storeUnderTest {
		rival, err := redis.Open(t.Context(), srv.URL, redis.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rival.Close() })
		hot = &contended{Store: s, rival: rival}
		return hot
	})
	c := e.newClient()
	c.register()
	o := c.newOrder("hot.example")
	c.authorize(o)
	hot.on.Store(true)
	r := c.post(o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "hot.example")}, jwsOpts{})
	problemType(t, r, http.StatusServiceUnavailable, "serverInternal")
	if r.header.Get("Retry-After") == "" {
		t.Fatalf("503 without Retry-After: %v", r.header)
	}
	if r.header.Get("Replay-Nonce") == "" {
		t.Fatalf("503 without Replay-Nonce: %v", r.header)
	}
	if !strings.Contains(e.logs.String(), "races in a row") {
		t.Fatalf("the 503 was not the lost races; log:\n%s", e.logs)
	}
	hot.on.Store(false)
	var fin order
	c.must(http.StatusOK, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "hot.example")}, &fin)
	if fin.Status != "valid" && fin.Status != "processing" {
		t.Fatalf("finalize once the race is over: %s", fin.Status)
	}
}

// /readyz on the public listener says "ready" or "not ready" and nothing
// else; why it is not ready (a Redis address, say) goes to the log, once.
func TestReadyzHidesDetail(t *testing.T) {
	srv := redistest.Start(t, redistest.WithAOF()) // a server of its own: it is stopped
	e := newRedisEnv(t, srv, nil)
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(e.url("/readyz"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz with Redis up: %d %q, want 200 \"ready\\n\"", code, body)
	}
	srv.Stop(t)
	for range 3 {
		code, body := get()
		if code != http.StatusServiceUnavailable || body != "not ready\n" {
			t.Fatalf("/readyz with Redis stopped: %d %q, want 503 \"not ready\\n\"", code, body)
		}
		if strings.Contains(body, srv.Addr) || strings.Contains(body, "127.0.0.1") {
			t.Fatalf("/readyz shows an address: %q", body)
		}
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `msg="not ready"`); n != 1 {
		t.Fatalf("logged \"not ready\" %d times over 3 checks, want once:\n%s", n, logs)
	}
	if !strings.Contains(logs, srv.Addr) {
		t.Fatalf("the log does not say why (no %s):\n%s", srv.Addr, logs)
	}
}

// syncBuffer is a bytes.Buffer that a logger and a test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
