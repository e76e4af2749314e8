package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestFailoverKeepsAcknowledged is issue 11's Done-when: a Redis Sentinel
// group (three sentinels, a master, two replicas) behind two acmed
// replicas, under load from concurrent clients, fails over mid-run
// (SENTINEL FAILOVER). Afterwards every order and certificate a client
// was given is still there (POST-as-GET); the requests that failed got
// 503 with Retry-After or badNonce, and clients retried them.
//
// ACMED_STORE_MIN_REPLICAS=0 (or 1) in the environment, which the acmed
// processes inherit, shows what the test catches: certificates lost.
func TestFailoverKeepsAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel group and two acmed replicas, issues thousands of certificates")
	}
	const (
		total   = 2000 // issuances in the run
		workers = 16
		// The failover starts after this many, so it lands mid-run.
		failAt = 600
	)
	sn := redistest.StartSentinel(t, redistest.WithReplicas(2))
	c := startReplicas(t, 2, sn.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()

	obs := &observer{}
	clients := make([]*failoverClient, workers)
	for i := range clients {
		clients[i] = newFailoverClient(t, ctx, c, obs)
	}
	names := make(chan string, total)
	for i := range total {
		names <- fmt.Sprintf("f%d.failover.example", i)
	}
	close(names)

	var (
		mu       sync.Mutex
		got      []failoverIssued
		reached  = make(chan struct{})
		once     sync.Once
		wg       sync.WaitGroup
		failures []error
	)
	start := time.Now()
	for _, fc := range clients {
		wg.Go(func() {
			for name := range names {
				is, err := fc.issue(ctx, name)
				mu.Lock()
				if err != nil {
					failures = append(failures, fmt.Errorf("%s: %w", name, err))
				} else {
					got = append(got, is)
				}
				if len(got) == failAt {
					once.Do(func() { close(reached) })
				}
				mu.Unlock()
				if err != nil && ctx.Err() != nil {
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var failoverAt, switchedAt time.Time
	select {
	case <-reached:
		old := sn.MasterAddr(t)
		failoverAt = time.Now()
		sn.Failover(t)
		addr := sn.WaitFailover(t, old)
		switchedAt = time.Now()
		t.Logf("SENTINEL FAILOVER after %d issuances: %s → %s in %s", failAt, old, addr, switchedAt.Sub(failoverAt).Round(time.Millisecond))
	case <-done:
	}
	<-done
	elapsed := time.Since(start)
	for i, err := range failures {
		if i == 10 {
			t.Errorf("… and %d more failed issuances", len(failures)-10)
			break
		}
		t.Errorf("issuance failed: %v", err)
	}
	if failoverAt.IsZero() {
		t.Fatalf("only %d issuances before the run ended; the failover never ran", len(got))
	}
	before, after := 0, 0
	for _, g := range got {
		switch {
		case g.at.Before(failoverAt):
			before++
		case g.at.After(switchedAt):
			after++
		}
	}
	t.Logf("%d of %d issuances in %s (%.0f/s) by %d clients through 2 replicas: %d before the failover, %d during, %d after",
		len(got), total, elapsed.Round(time.Millisecond), float64(len(got))/elapsed.Seconds(), workers, before, len(got)-before-after, after)

	// Re-read everything a client was given, from whichever replica.
	reread := make(chan failoverIssued, len(got))
	for _, g := range got {
		reread <- g
	}
	close(reread)
	var missing []string
	for range workers {
		wg.Go(func() {
			for g := range reread {
				if err := g.client.check(ctx, g); err != nil {
					mu.Lock()
					missing = append(missing, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	counts, requests := obs.summary()
	t.Logf("%d HTTP requests, %d failed (%.2f%%): %s", requests, obs.failed(), 100*float64(obs.failed())/float64(requests), counts)
	if first, last, ok := obs.window(); ok {
		t.Logf("failed requests from %+.1fs to %+.1fs after SENTINEL FAILOVER; per second: %v", first.Sub(failoverAt).Seconds(), last.Sub(failoverAt).Seconds(), obs.perSecond(failoverAt))
	}
	t.Logf("re-read %d orders and certificates: %d missing or changed", len(got), len(missing))
	sort.Strings(missing)
	for i, m := range missing {
		if i == 10 {
			t.Errorf("… and %d more", len(missing)-10)
			break
		}
		t.Errorf("lost: %s", m)
	}
	for kind, n := range obs.unexpected() {
		t.Errorf("%d requests failed with %s; want only 503 with Retry-After or badNonce", n, kind)
	}
	// A few percent at most: those in flight at the switch and in the
	// seconds until acmed follows the new master.
	if f := obs.failed(); f*100 > 5*requests {
		t.Errorf("%d of %d requests failed, want at most 5%%", f, requests)
	}
}

// failoverIssued is one issuance a client was told about.
type failoverIssued struct {
	client   *failoverClient
	orderURL string
	certURL  string
	leaf     []byte
	at       time.Time
}

// failoverClient is an ACME client that retries what the server asks it
// to (503 + Retry-After, badNonce) itself, re-reading state before it
// repeats a write, as a careful client does: a 503 does not say whether
// the write took.
type failoverClient struct {
	cl *acme.Client
	c  *cluster
}

// retryLimit bounds the retries of one step; with Retry-After: 1 that is
// about a minute, far longer than a failover takes.
const retryLimit = 60

func newFailoverClient(t *testing.T, ctx context.Context, c *cluster, obs *observer) *failoverClient {
	t.Helper()
	hc := c.rr.client(c.replicas[0])
	hc.Transport = observed{next: hc.Transport, obs: obs}
	fc := &failoverClient{c: c, cl: &acme.Client{
		Key: newKey(t), DirectoryURL: c.replicas[0].dir, HTTPClient: hc,
		// The client retries here, not inside the acme package, so that
		// it re-reads state first and each failure shows.
		RetryBackoff: func(int, *http.Request, *http.Response) time.Duration { return 0 },
	}}
	if err := fc.retry(ctx, func() error {
		_, err := fc.cl.Register(ctx, &acme.Account{}, acme.AcceptTOS)
		return err
	}); err != nil {
		t.Fatalf("register: %v", err)
	}
	return fc
}

// retry runs op until it succeeds, fails otherwise than the server asked
// to retry, or retryLimit runs out. After a 503 it waits the Retry-After
// the observer checked was there (1s); a badNonce is retried at once, as
// the acme package has dropped its nonces.
func (fc *failoverClient) retry(ctx context.Context, op func() error) error {
	var err error
	for range retryLimit {
		if err = op(); err == nil || !retriable(err) {
			return err
		}
		if err := fc.backoff(ctx, err); err != nil {
			return err
		}
	}
	return fmt.Errorf("after %d tries: %w", retryLimit, err)
}

func retriable(err error) bool {
	var p *acme.Error
	return errors.As(err, &p) && (p.StatusCode == http.StatusServiceUnavailable || p.ProblemType == badNonce)
}

const badNonce = "urn:ietf:params:acme:error:badNonce"

func (fc *failoverClient) backoff(ctx context.Context, err error) error {
	var p *acme.Error
	if errors.As(err, &p) && p.ProblemType == badNonce {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Second):
		return nil
	}
}

// poll is the pause between reads of a resource still processing.
const poll = 50 * time.Millisecond

func (fc *failoverClient) pause(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(poll):
		return nil
	}
}

// issue obtains a certificate for name: new order, http-01, finalize,
// download. A write that failed (and may have taken or not) is followed
// by a read of the resource, which decides the next step.
func (fc *failoverClient) issue(ctx context.Context, name string) (failoverIssued, error) {
	var o *acme.Order
	if err := fc.retry(ctx, func() (err error) {
		o, err = fc.cl.AuthorizeOrder(ctx, acme.DomainIDs(name))
		return err
	}); err != nil {
		return failoverIssued{}, fmt.Errorf("new order: %w", err)
	}
	if err := fc.authorize(ctx, o.AuthzURLs[0]); err != nil {
		return failoverIssued{}, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, newKeyNoT())
	if err != nil {
		return failoverIssued{}, err
	}
	for range retryLimit {
		var ord *acme.Order
		if err := fc.retry(ctx, func() (err error) {
			ord, err = fc.cl.GetOrder(ctx, o.URI)
			return err
		}); err != nil {
			return failoverIssued{}, fmt.Errorf("order: %w", err)
		}
		switch ord.Status {
		case acme.StatusValid:
			return fc.download(ctx, o.URI, ord.CertURL, name)
		case acme.StatusReady:
			_, certURL, err := fc.cl.CreateOrderCert(ctx, o.FinalizeURL, csr, false)
			switch {
			case err == nil:
				return fc.download(ctx, o.URI, certURL, name)
			case !retriable(err):
				return failoverIssued{}, fmt.Errorf("finalize: %w", err)
			}
			if err := fc.backoff(ctx, err); err != nil {
				return failoverIssued{}, err
			}
		case acme.StatusProcessing:
			if err := fc.pause(ctx); err != nil {
				return failoverIssued{}, err
			}
		default:
			return failoverIssued{}, fmt.Errorf("order %s is %s", o.URI, ord.Status)
		}
	}
	return failoverIssued{}, fmt.Errorf("order %s never became valid", o.URI)
}

// authorize answers the authorization's http-01 challenge and waits until
// it is valid.
func (fc *failoverClient) authorize(ctx context.Context, url string) error {
	for range retryLimit * 10 {
		var z *acme.Authorization
		if err := fc.retry(ctx, func() (err error) {
			z, err = fc.cl.GetAuthorization(ctx, url)
			return err
		}); err != nil {
			return fmt.Errorf("authorization: %w", err)
		}
		if z.Status == acme.StatusValid {
			return nil
		}
		if z.Status != acme.StatusPending {
			return fmt.Errorf("authorization %s is %s", url, z.Status)
		}
		var chal *acme.Challenge
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				chal = ch
			}
		}
		if chal == nil {
			return fmt.Errorf("authorization %s has no http-01 challenge", url)
		}
		if chal.Status != acme.StatusPending {
			if err := fc.pause(ctx); err != nil { // processing
				return err
			}
			continue
		}
		keyAuth, err := fc.cl.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return err
		}
		fc.c.http01.Set(chal.Token, keyAuth)
		ch, err := fc.cl.Accept(ctx, chal)
		switch {
		case err == nil && ch.Status == acme.StatusValid:
			return nil
		case err == nil:
			if err := fc.pause(ctx); err != nil {
				return err
			}
		case !retriable(err):
			return fmt.Errorf("challenge response: %w", err)
		default:
			if err := fc.backoff(ctx, err); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("authorization %s never became valid", url)
}

func (fc *failoverClient) download(ctx context.Context, orderURL, certURL, name string) (failoverIssued, error) {
	var der [][]byte
	if err := fc.retry(ctx, func() (err error) {
		der, err = fc.cl.FetchCert(ctx, certURL, true)
		return err
	}); err != nil {
		return failoverIssued{}, fmt.Errorf("download: %w", err)
	}
	if _, err := verifyLeaf(fc.c.replicas[0], der, name); err != nil {
		return failoverIssued{}, err
	}
	return failoverIssued{client: fc, orderURL: orderURL, certURL: certURL, leaf: der[0], at: time.Now()}, nil
}

// check re-reads an issuance: the order is still valid with the same
// certificate, and the certificate is the one downloaded.
func (fc *failoverClient) check(ctx context.Context, g failoverIssued) error {
	var ord *acme.Order
	if err := fc.retry(ctx, func() (err error) {
		ord, err = fc.cl.GetOrder(ctx, g.orderURL)
		return err
	}); err != nil {
		return fmt.Errorf("order %s: %v", g.orderURL, err)
	}
	if ord.Status != acme.StatusValid || ord.CertURL != g.certURL {
		return fmt.Errorf("order %s is %s with certificate %q, was valid with %q", g.orderURL, ord.Status, ord.CertURL, g.certURL)
	}
	var der [][]byte
	if err := fc.retry(ctx, func() (err error) {
		der, err = fc.cl.FetchCert(ctx, g.certURL, false)
		return err
	}); err != nil {
		return fmt.Errorf("certificate %s: %v", g.certURL, err)
	}
	if !bytes.Equal(der[0], g.leaf) {
		return fmt.Errorf("certificate %s changed", g.certURL)
	}
	return nil
}
