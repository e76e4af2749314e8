package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// waitExit waits for s to exit after a SIGTERM, at most within, and fails
// the test unless it exited with status 0.
func waitExit(t *testing.T, s *server, within time.Duration) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(within):
		t.Fatalf("acmed still running %s after SIGTERM", within)
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("acmed exited with status %d after SIGTERM, want 0:\n%s", code, s.ReadLog())
	}
}

// get fetches url and returns its status and body.
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// signedNewAccount is a complete newAccount request for a fresh key,
// with a nonce fetched from base.
func signedNewAccount(t *testing.T, c *http.Client, base string) []byte {
	t.Helper()
	resp, err := c.Head(base + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: newKey(t)}, &jose.SignerOptions{
		EmbedJWK: true,
		ExtraHeaders: map[jose.HeaderKey]any{
			"nonce": resp.Header.Get("Replay-Nonce"), "url": base + "/acme/new-account",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"termsOfServiceAgreed":true}`))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(jws.FullSerialize())
}

// TestDrainFinishesInFlight: on SIGTERM acmed says "not ready" for the
// drain delay while still serving, then stops accepting; a request that
// was in flight when the signal came still gets its whole answer, and
// acmed exits 0, logging each phase once.
func TestDrainFinishesInFlight(t *testing.T) {
	const drainDelay, shutdownTimeout = 5 * time.Second, 20 * time.Second
	s := startAcmed(t, filepath.Join(t.TempDir(), "data"),
		"--drain-delay", drainDelay.String(), "--shutdown-timeout", shutdownTimeout.String())
	base := strings.TrimSuffix(s.dir, "/directory")
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	hc := s.httpClient()
	body := signedNewAccount(t, hc, base)

	// A request in flight: its headers sent, half its body held back.
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: s.root, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	half := len(body) / 2
	fmt.Fprintf(conn, "POST /acme/new-account HTTP/1.1\r\nHost: %s\r\nContent-Type: application/jose+json\r\nContent-Length: %d\r\n\r\n", u.Host, len(body))
	if _, err := conn.Write(body[:half]); err != nil {
		t.Fatal(err)
	}

	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: /readyz says not ready, everything else is served.
	deadline := time.Now().Add(drainDelay)
	for {
		code, text, err := get(hc, base+"/readyz")
		if err != nil {
			t.Fatalf("/readyz during the drain delay: %v", err)
		}
		if code == http.StatusServiceUnavailable {
			if text != "not ready\n" {
				t.Fatalf("/readyz while draining: %q, want \"not ready\\n\"", text)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after the drain delay", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, err := get(hc, base+"/directory"); err != nil || code != http.StatusOK {
		t.Fatalf("/directory while draining: %d %v, want 200", code, err)
	}
	// Past the delay the listener closes; wait for it.
	deadline = time.Now().Add(drainDelay + 10*time.Second)
	for {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("acmed still accepts connections long after the drain delay")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The request in flight is finished, and answered in full.
	if _, err := conn.Write(body[half:]); err != nil {
		t.Fatalf("finishing the request in flight: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(shutdownTimeout))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("request in flight at SIGTERM: %v, want its response", err)
	}
	defer resp.Body.Close()
	var acct struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&acct); err != nil || resp.StatusCode != http.StatusCreated || acct.Status != "valid" {
		t.Fatalf("request in flight at SIGTERM: %d %+v %v, want 201 and a valid account", resp.StatusCode, acct, err)
	}
	if resp.Header.Get("Connection") != "close" && !resp.Close {
		t.Errorf("response while stopping does not close the connection: %v", resp.Header)
	}
	waitExit(t, s, drainDelay+shutdownTimeout+10*time.Second)
	log := s.ReadLog()
	for _, phase := range []string{
		"stopping: draining", "stopping: refusing new connections", "stopping: waiting for running jobs",
		"stopping: closing the store", "msg=stopped",
	} {
		if n := strings.Count(log, phase); n != 1 {
			t.Errorf("log has %q %d times, want once:\n%s", phase, n, log)
		}
	}
}

// balancer is a small HTTP load balancer that honours /readyz: it polls
// each backend's /readyz every interval and sends requests, round robin,
// only to the backends that answered 200 last. It does not retry: a
// request that fails on a backend fails for the client.
type balancer struct {
	*httptest.Server
	backends []*backend
	next     atomic.Uint64
}

type backend struct {
	addr  string
	ready atomic.Bool
	proxy *httputil.ReverseProxy
}

func startBalancer(t *testing.T, roots *x509.CertPool, interval time.Duration, addrs ...string) *balancer {
	t.Helper()
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		MaxIdleConnsPerHost: 32,
	}
	t.Cleanup(transport.CloseIdleConnections)
	b := &balancer{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, addr := range addrs {
		target := &url.URL{Scheme: "https", Host: addr}
		be := &backend{addr: addr, proxy: httputil.NewSingleHostReverseProxy(target)}
		be.proxy.Transport = transport
		b.backends = append(b.backends, be)
		probe := &http.Client{Transport: transport, Timeout: interval * 5}
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				code, _, err := get(probe, target.String()+"/readyz")
				be.ready.Store(err == nil && code == http.StatusOK)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := uint64(len(b.backends))
		start := b.next.Add(1)
		for i := range n {
			if be := b.backends[(start+i)%n]; be.ready.Load() {
				be.proxy.ServeHTTP(w, r)
				return
			}
		}
		http.Error(w, "no backend is ready", http.StatusServiceUnavailable)
	}))
	t.Cleanup(b.Close)
	return b
}

// waitBackendReady waits until the balancer sees addr ready.
func (b *balancer) waitBackendReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, be := range b.backends {
			if be.addr == addr && be.ready.Load() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("balancer never saw %s ready", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// counting counts every HTTP request a client sends and those that failed:
// no response, or a 5xx.
type counting struct {
	next          http.RoundTripper
	total, failed atomic.Int64
	mu            sync.Mutex
	failures      []string
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	c.total.Add(1)
	resp, err := c.next.RoundTrip(r)
	switch {
	case err != nil:
		c.fail(fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
	case resp.StatusCode >= 500:
		c.fail(fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, resp.Status))
	}
	return resp, err
}

func (c *counting) fail(what string) {
	c.failed.Add(1)
	c.mu.Lock()
	c.failures = append(c.failures, what)
	c.mu.Unlock()
}

// issueStrict runs one whole issuance and gives up at the first error:
// nothing here retries (the acme package's own retries show up in the
// request counts).
func issueStrict(ctx context.Context, c *acme.Client, h *challengetest.HTTP01, name string) error {
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return fmt.Errorf("new order: %w", err)
	}
	for _, u := range o.AuthzURLs {
		z, err := c.GetAuthorization(ctx, u)
		if err != nil {
			return fmt.Errorf("authorization: %w", err)
		}
		for _, ch := range z.Challenges {
			if ch.Type != "http-01" {
				continue
			}
			keyAuth, err := c.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				return err
			}
			h.Set(ch.Token, keyAuth)
			if _, err := c.Accept(ctx, ch); err != nil {
				return fmt.Errorf("accept: %w", err)
			}
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			return fmt.Errorf("wait authorization: %w", err)
		}
	}
	if _, err := c.WaitOrder(ctx, o.URI); err != nil {
		return fmt.Errorf("wait order: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, newKeyNoT())
	if err != nil {
		return err
	}
	if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true); err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	return nil
}

// TestRollingRestart: two replicas on one Redis behind a balancer that
// honours /readyz; each in turn is stopped with SIGTERM and started again
// mid-load. Not one request fails, and each replica exits 0 in time.
func TestRollingRestart(t *testing.T) {
	const (
		interval        = 100 * time.Millisecond // the balancer's check
		drainDelay      = 1 * time.Second        // ≥ interval × 1 failed check, with room
		shutdownTimeout = 20 * time.Second
		workers         = 4
	)
	r := redistest.Start(t)
	dns, http01 := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	rootPEM, err := os.ReadFile(filepath.Join(data, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(rootPEM)
	addrs := []string{"127.0.0.1:" + strconv.Itoa(freePort(t)), "127.0.0.1:" + strconv.Itoa(freePort(t))}
	// The balancer comes first: the replicas announce its URL.
	lb := startBalancer(t, roots, interval, addrs...)
	external := lb.URL
	start := func(addr string) *server {
		return startAcmed(t, data, "--listen", addr, "--external-url", external, "--store", r.URL,
			"--resolver", dns.Addr, "--http01-port", strconv.Itoa(http01.Port), "--reclaim-after", "2s",
			"--drain-delay", drainDelay.String(), "--shutdown-timeout", shutdownTimeout.String())
	}
	replicas := []*server{start(addrs[0]), start(addrs[1])}
	for _, a := range addrs {
		lb.waitBackendReady(t, a)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	counter := &counting{next: http.DefaultTransport.(*http.Transport).Clone()}
	hc := &http.Client{Transport: counter, Timeout: 30 * time.Second}
	var (
		done atomic.Int64
		stop = make(chan struct{})
		errs = make(chan error, workers)
		wg   sync.WaitGroup
	)
	for w := range workers {
		cl := &acme.Client{Key: newKey(t), DirectoryURL: external + "/directory", HTTPClient: hc}
		if _, err := cl.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
			t.Fatalf("register: %v", err)
		}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if err := issueStrict(ctx, cl, http01, fmt.Sprintf("w%d-%d.rolling.example", w, i)); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		})
	}
	// waitIssued waits for n more issuances, or fails if the load stopped.
	waitIssued := func(n int64) {
		t.Helper()
		target := done.Load() + n
		deadline := time.Now().Add(2 * time.Minute)
		for done.Load() < target {
			select {
			case err := <-errs:
				t.Fatalf("issuance failed: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("load stalled at %d issuances", done.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	waitIssued(8)
	for i := range replicas {
		if err := replicas[i].cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitIssued(4) // served by the other while this one drains
		waitExit(t, replicas[i], drainDelay+shutdownTimeout+10*time.Second)
		replicas[i] = start(addrs[i])
		lb.waitBackendReady(t, addrs[i])
		waitIssued(8)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("issuance failed: %v", err)
	}
	total, failed := counter.total.Load(), counter.failed.Load()
	t.Logf("%d issuances, %d requests through the balancer across a rolling restart of both replicas, %d failed",
		done.Load(), total, failed)
	if failed != 0 {
		t.Fatalf("%d of %d requests failed: %v", failed, total, counter.failures)
	}
}

// TestDrainFlagsRefused: a negative duration stops acmed with exit status
// 1 and one line naming the flag.
func TestDrainFlagsRefused(t *testing.T) {
	for _, flag := range []string{"--drain-delay", "--shutdown-timeout"} {
		cmd := exec.Command(acmedBinary, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", flag, "-1s")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 1 {
			t.Fatalf("%s -1s: %v, want exit status 1", flag, err)
		}
		if msg := strings.TrimSpace(string(out)); strings.Contains(msg, "\n") || !strings.Contains(msg, flag+" -1s") {
			t.Fatalf("%s -1s: %q, want one line naming the flag", flag, msg)
		}
	}
}
