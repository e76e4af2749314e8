package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
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

// ProcessHook counts every command but XAUTOCLAIM, Consume's scan for
// abandoned jobs, and the nonce key's read: both are paced by the clock
// (the key is read once per process and rotation), not by issuances.
func (c *commandCounter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if name := strings.ToUpper(cmd.Name()); name != "XAUTOCLAIM" && !nonceKeyCmd(cmd) {
			c.add(name)
		}
		return next(ctx, cmd)
	}
}

// nonceKeyCmd reports whether cmd is on a nonce epoch's key.
func nonceKeyCmd(cmd goredis.Cmder) bool {
	args := cmd.Args()
	key, ok := "", len(args) > 1
	if ok {
		key, ok = args[1].(string)
	}
	return ok && strings.HasPrefix(key, "acmed:noncekey:")
}

func (c *commandCounter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		if len(cmds) > 0 && nonceKeyCmd(cmds[0]) {
			return next(ctx, cmds)
		}
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = strings.ToUpper(cmd.Name())
		}
		c.add("pipeline(" + strings.Join(names, ",") + ")")
		return next(ctx, cmds)
	}
}

// TestRoundTripsPerIssuance counts the Redis round trips of one whole
// issuance as acmebench makes it (new order, authorization, challenge
// response answered valid, finalize answered valid, download) by a client
// that already has an account. The count is exact: every request reads
// its nonce, account and resource in one pipeline; a challenge response
// and a finalize each write the resource and queue their job in one
// script, and the job, run by the same replica, records its result and
// finishes itself in one more. Nonces write nothing but the spent one, in
// the request's pipeline (SET NX); the nonce key is read once per rotation.
//
//	new-order  pipeline(nonce, account) + GET reuse index +
//	           script(rate limits, create)                          3
//	authz      pipeline(nonce, account, authz)                      1
//	challenge  pipeline + script(start, queue) + script(result)     3
//	finalize   pipeline(.., order) + MGET authzs + script(begin,
//	           queue) + script(result, certificate, its count)      4
//	cert       pipeline(nonce, account, certificate)                1
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
		Store: store, Signer: signer, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Validator: challenges.New(challenges.Config{Resolver: challenges.NewResolver(dns.Addr), HTTPPort: h.Port}),
		// However slow the machine, the jobs finish within the request.
		ValidationWait: time.Minute, FinalizeWait: time.Minute,
		Limiter: store, Limits: authority.DefaultLimits(), // as acmed serve runs
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	worker := make(chan struct{})
	go func() { _ = auth.Run(runCtx); close(worker) }()
	defer func() { stop(); <-worker; auth.Drain() }()
	srv := httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = api.New(api.Config{Authority: auth, BaseURL: base})
	srv.Start()
	defer srv.Close()

	c := &acme.Client{Key: newKey(t), DirectoryURL: base + "/directory"}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	issueFast(t, ctx, c, h, "warm.example") // loads scripts, fills the client's nonce cache
	counter.reset()
	issueFast(t, ctx, c, h, "count.example")
	got := counter.reset()

	total, lines := 0, []string{}
	for name, n := range got {
		total += n
		lines = append(lines, fmt.Sprintf("%3d %s", n, name))
	}
	sort.Strings(lines)
	t.Logf("Redis round trips for one issuance: %d\n%s", total, strings.Join(lines, "\n"))
	if total != issuanceRoundTrips {
		t.Errorf("one issuance took %d Redis round trips, want exactly %d", total, issuanceRoundTrips)
	}
}

// issuanceRoundTrips is the budget of issue 6 (at most 12), met exactly,
// and kept with the rate limits of issue 13 (the hot path must not get
// slower): new-order's checks ride in the script that creates the order
// (storage.Limiting; the account's limits share its slot, and on a single
// server the name set's does too), deciding before it writes; the counts
// of what happened ride in the writes that record it (the validation's
// outcome gives back the pending authorization; the certificate counts
// against its name set). On a Cluster the name set's limit lives in
// another slot than the order: one more round trip there.
const issuanceRoundTrips = 12

// issueFast is acmebench's issuance: five requests, no polling, since the
// server answers the challenge response and the finalize with their
// results.
func issueFast(t *testing.T, ctx context.Context, c *acme.Client, h *challengetest.HTTP01, name string) {
	t.Helper()
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatalf("authorization: %v", err)
	}
	var chal *acme.Challenge
	for _, ch := range z.Challenges {
		if ch.Type == "http-01" {
			chal = ch
		}
	}
	resp, err := c.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		t.Fatal(err)
	}
	h.Set(chal.Token, resp)
	if chal, err = c.Accept(ctx, chal); err != nil || chal.Status != acme.StatusValid {
		t.Fatalf("challenge response: %v, status %q", err, chal.Status)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	// CreateOrderCert polls only if the finalize answer is not valid.
	if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true); err != nil {
		t.Fatalf("finalize and download: %v", err)
	}
}
