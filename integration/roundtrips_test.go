package integration

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// commandCounter counts Redis round trips by command; a pipeline is one
// round trip, named after its commands.
type commandCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *commandCounter) add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[name]++
}

func (c *commandCounter) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.n
	c.n = map[string]int{}
	return old
}

func (c *commandCounter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.add(strings.ToUpper(cmd.Name()))
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = strings.ToUpper(cmd.Name())
		}
		c.add("pipeline(" + strings.Join(names, ",") + ")")
		return next(ctx, cmds)
	}
}

// TestRoundTripsPerIssuance counts the Redis round trips of one whole
// issuance (new order, authorization, challenge, validation, finalize,
// issuance, download) by a client that already has an account.
func TestRoundTripsPerIssuance(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	counter := &commandCounter{n: map[string]int{}}
	store, err := redis.Open(ctx, rs.URL, redis.Config{Hook: counter})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	signer, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	auth, err := authority.New(authority.Config{
		Store: store, Signer: signer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SharedQueue: true,
		Validator: challenges.New(challenges.Config{Resolver: challenges.NewResolver(dns.Addr), HTTPPort: h.Port}),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	worker := make(chan struct{})
	go func() { _ = auth.Run(runCtx); close(worker) }()
	defer func() { stop(); <-worker }()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = api.New(api.Config{Authority: auth, BaseURL: base})
	srv.Start()
	defer srv.Close()

	c := &acme.Client{Key: newKey(t), DirectoryURL: base + "/directory"}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	issue(t, ctx, c, h, "warm.example") // loads scripts, fills the client's nonce cache
	counter.reset()
	issue(t, ctx, c, h, "count.example")
	got := counter.reset()

	total, lines := 0, []string{}
	for name, n := range got {
		total += n
		lines = append(lines, fmt.Sprintf("%3d %s", n, name))
	}
	sort.Strings(lines)
	t.Logf("Redis round trips for one issuance: %d\n%s", total, strings.Join(lines, "\n"))
	// 38 when every job finishes before its request first polls; a slow
	// validation or a worker's extra stream read adds a few. More than that
	// is a regression (an extra round trip per request adds eight).
	if total > maxIssuanceRoundTrips {
		t.Errorf("one issuance took %d Redis round trips, want at most %d", total, maxIssuanceRoundTrips)
	}
}

const maxIssuanceRoundTrips = 50
