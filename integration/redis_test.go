package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// cluster is several acmed replicas sharing one CA and one store, reached
// through a round-robin balancer.
type cluster struct {
	replicas []*server
	rr       *roundRobin
	dns      *challengetest.DNS
	http01   *challengetest.HTTP01
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startReplicas runs n acmed processes on storeURL with one CA made by
// `acmed init`, all announcing the same external URL.
func startReplicas(t testing.TB, n int, storeURL string) *cluster {
	t.Helper()
	c := &cluster{dns: challengetest.StartDNS(t), http01: challengetest.StartHTTP01(t), rr: &roundRobin{}}
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	external := "https://localhost:" + strconv.Itoa(ports[0])
	for _, p := range ports {
		s := startAcmed(t, data, "--listen", "127.0.0.1:"+strconv.Itoa(p), "--external-url", external,
			"--store", storeURL, "--resolver", c.dns.Addr, "--http01-port", strconv.Itoa(c.http01.Port),
			"--reclaim-after", "2s")
		c.replicas = append(c.replicas, s)
		c.rr.addrs = append(c.rr.addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	return c
}

// client registers an account through the balancer.
func (c *cluster) client(t testing.TB, ctx context.Context) *acme.Client {
	t.Helper()
	cl := &acme.Client{Key: newKey(t), DirectoryURL: c.replicas[0].dir, HTTPClient: c.rr.client(c.replicas[0])}
	if _, err := retry(ctx, func() (*acme.Account, error) { return cl.Register(ctx, &acme.Account{}, acme.AcceptTOS) }); err != nil {
		t.Fatalf("register: %v", err)
	}
	return cl
}

// issued is one certificate a load run obtained.
type issued struct {
	leaf    []byte
	certURL string
	client  *acme.Client
	at      time.Time
}

// load issues n certificates with workers clients at once and closes
// reached after the k-th success, so the test can break something mid-run
// from its own goroutine. Any issuance that fails fails the test.
func (c *cluster) load(t testing.TB, ctx context.Context, n, workers, k int, reached chan<- struct{}) []issued {
	t.Helper()
	names := make(chan string, n)
	for i := range n {
		names <- fmt.Sprintf("host%d.replicas.example", i)
	}
	close(names)
	var (
		mu   sync.Mutex
		out  []issued
		once sync.Once
		wg   sync.WaitGroup
	)
	signal := func() {
		if reached != nil {
			once.Do(func() { close(reached) })
		}
	}
	defer signal()
	for range workers {
		cl := c.client(t, ctx)
		wg.Go(func() {
			for name := range names {
				der, certURL, err := issueResilient(ctx, cl, c.http01, name)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if _, err := verifyLeaf(c.replicas[0], der, name); err != nil {
					t.Errorf("%s: %v", name, err)
				}
				mu.Lock()
				out = append(out, issued{leaf: der[0], certURL: certURL, client: cl, at: time.Now()})
				if len(out) == k {
					signal()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// loadAround runs load in the background and calls act from the test's
// goroutine once k issuances are done.
func (c *cluster) loadAround(t *testing.T, ctx context.Context, n, workers, k int, act func()) []issued {
	t.Helper()
	reached := make(chan struct{})
	result := make(chan []issued, 1)
	go func() { result <- c.load(t, ctx, n, workers, k, reached) }()
	<-reached
	act()
	return <-result
}

func verifyLeaf(s *server, der [][]byte, name string) (*x509.Certificate, error) {
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return nil, err
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, err
		}
		inter.AddCert(c)
	}
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: s.root, Intermediates: inter})
	return leaf, err
}

// TestReplicas: three replicas on one Redis serve a client whose every
// request goes to the next replica; one replica is killed with SIGKILL
// mid-run and every issuance still completes, none stuck.
func TestReplicas(t *testing.T) {
	r := redistest.Start(t)
	c := startReplicas(t, 3, r.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	start := time.Now()
	got := c.loadAround(t, ctx, 100, 8, 30, func() {
		if err := c.replicas[2].cmd.Process.Kill(); err != nil {
			t.Errorf("kill replica: %v", err)
		}
	})
	if len(got) != 100 {
		t.Fatalf("%d of 100 issuances completed", len(got))
	}
	t.Logf("100 issuances through 3 replicas (one killed after 30) in %s", time.Since(start).Round(time.Millisecond))
}

// TestReplicaRaces: concurrent finalize requests for one order, spread over
// replicas, issue exactly one certificate; concurrent challenge responses
// start exactly one validation.
func TestReplicaRaces(t *testing.T) {
	r := redistest.Start(t)
	c := startReplicas(t, 3, r.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := c.client(t, ctx)

	o, err := cl.AuthorizeOrder(ctx, acme.DomainIDs("race.replicas.example"))
	if err != nil {
		t.Fatal(err)
	}
	z, err := cl.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	chal := z.Challenges[0]
	keyAuth, _ := cl.HTTP01ChallengeResponse(chal.Token)
	c.http01.Set(chal.Token, keyAuth)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := cl.Accept(ctx, chal); err != nil {
				t.Errorf("accept: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := cl.WaitAuthorization(ctx, o.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}
	if hits := c.http01.Hits(chal.Token); hits != 1 {
		t.Fatalf("50 challenge responses made %d validations, want 1", hits)
	}
	if _, err := cl.WaitOrder(ctx, o.URI); err != nil {
		t.Fatal(err)
	}

	var ok atomic.Int64
	for range 50 {
		wg.Go(func() {
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"race.replicas.example"}}, newKeyNoT())
			if _, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true); err == nil {
				ok.Add(1)
			} else if problemType(err) != "urn:ietf:params:acme:error:orderNotReady" {
				t.Errorf("losing finalize: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Fatalf("%d finalize requests succeeded, want 1", ok.Load())
	}
	if n := countAudit(t, c, "event=certificate.issue"); n != 1 {
		t.Fatalf("replicas logged %d issuances, want 1", n)
	}
}

func countAudit(t *testing.T, c *cluster, event string) int {
	t.Helper()
	n := 0
	for _, s := range c.replicas {
		b, err := os.ReadFile(s.log)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), event)
	}
	return n
}

// fetchAll downloads every certificate again, from whichever replica.
func fetchAll(t *testing.T, ctx context.Context, got []issued) {
	t.Helper()
	for _, g := range got {
		der, err := retry(ctx, func() ([][]byte, error) { return g.client.FetchCert(ctx, g.certURL, true) })
		if err != nil || string(der[0]) != string(g.leaf) {
			t.Errorf("certificate %s not retrievable: %v", g.certURL, err)
		}
	}
}

// gap is the longest time between two consecutive issuances.
func gap(got []issued) time.Duration {
	times := make([]time.Time, len(got))
	for i, g := range got {
		times[i] = g.at
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	var longest time.Duration
	for i := 1; i < len(times); i++ {
		longest = max(longest, times[i].Sub(times[i-1]))
	}
	return longest
}

// waitReady polls a replica's /readyz until it answers want.
func waitReady(t *testing.T, s *server, want int) {
	t.Helper()
	base := strings.TrimSuffix(s.dir, "/directory")
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := s.httpClient().Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered %d", want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisRestart: Redis (AOF on) restarts mid-run; clients see 503s and
// retry; /readyz follows; every certificate issued before and after is
// still retrievable.
func TestRedisRestart(t *testing.T) {
	r := redistest.Start(t, redistest.WithAOF())
	c := startReplicas(t, 2, r.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	got := c.loadAround(t, ctx, 40, 4, 10, func() {
		r.Stop(t)
		waitReady(t, c.replicas[0], 503)
		assertUnavailable(t, c.replicas[0])
		r.Restart(t)
		waitReady(t, c.replicas[0], 200)
	})
	if len(got) != 40 {
		t.Fatalf("%d of 40 issuances completed", len(got))
	}
	fetchAll(t, ctx, got)
	t.Logf("longest gap between issuances around the restart: %s", gap(got).Round(time.Millisecond))
}

// TestSentinelFailover: the master dies mid-run; acmed follows the replica
// the sentinels promote and issuance resumes by itself.
func TestSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t)
	c := startReplicas(t, 2, s.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var killedAt time.Time
	got := c.loadAround(t, ctx, 40, 4, 10, func() {
		old := s.MasterAddr(t)
		killedAt = time.Now()
		s.Master.Kill(t)
		t.Logf("failover to %s took %s", s.WaitFailover(t, old), time.Since(killedAt).Round(time.Millisecond))
	})
	if len(got) != 40 {
		t.Fatalf("%d of 40 issuances completed", len(got))
	}
	fetchAll(t, ctx, got)
	t.Logf("longest gap between issuances around the failover: %s", gap(got).Round(time.Millisecond))
}

// TestRedisCluster: the same flow against a three-master Redis Cluster.
func TestRedisCluster(t *testing.T) {
	rc := redistest.StartCluster(t)
	c := startReplicas(t, 2, rc.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got := c.load(t, ctx, 20, 4, 0, nil)
	if len(got) != 20 {
		t.Fatalf("%d of 20 issuances completed", len(got))
	}
	fetchAll(t, ctx, got)
	if err := got[0].client.RevokeCert(ctx, nil, got[0].leaf, acme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke: %v", err)
	}
}

// BenchmarkIssuance measures whole issuances per second through the
// balancer, 8 clients at once, with the embedded store (one replica) and
// with Redis behind one and three replicas. Run:
//
//	go test -run XXX -bench Issuance -benchtime 200x ./integration/
func BenchmarkIssuance(b *testing.B) {
	for _, bc := range []struct {
		name     string
		replicas int
		redis    bool
	}{{"embedded/1", 1, false}, {"redis/1", 1, true}, {"redis/3", 3, true}} {
		b.Run(bc.name, func(b *testing.B) {
			store := filepath.Join(b.TempDir(), "acmed.db")
			if bc.redis {
				store = redistest.Start(b).URL
			}
			c := startReplicas(b, bc.replicas, store)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			b.ResetTimer()
			got := c.load(b, ctx, b.N, 8, 0, nil)
			b.StopTimer()
			if len(got) != b.N {
				b.Fatalf("%d of %d issuances completed", len(got), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
		})
	}
}

// assertUnavailable checks what a client gets while the store is down: a
// serverInternal problem with 503 and Retry-After in seconds. New-nonce
// is no probe for it: nonces are stateless, and it answers without the
// store. A signed request, which spends its nonce, is.
func assertUnavailable(t *testing.T, s *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := &acme.Client{
		Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient(),
		RetryBackoff: func(int, *http.Request, *http.Response) time.Duration { return -1 },
	}
	_, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	var p *acme.Error
	if !errors.As(err, &p) {
		t.Fatalf("new-account while Redis is down: %v, want a problem", err)
	}
	if p.StatusCode != http.StatusServiceUnavailable || p.Header.Get("Retry-After") != "1" ||
		p.Header.Get("Content-Type") != "application/problem+json" ||
		p.ProblemType != "urn:ietf:params:acme:error:serverInternal" {
		t.Fatalf("new-account while Redis is down: %d %s, Retry-After %q, Content-Type %q",
			p.StatusCode, p.ProblemType, p.Header.Get("Retry-After"), p.Header.Get("Content-Type"))
	}
}
