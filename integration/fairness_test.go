package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// dripServer answers http-01 on loopback: tokens marked slow get a 200
// and then one byte at a time, never finishing, until the validator gives
// up (its timeout) or Stop is called; the others are answered by an
// ordinary responder.
type dripServer struct {
	port    int
	answer  *challengetest.HTTP01
	mu      sync.Mutex
	slow    map[string]bool
	arrived atomic.Int64  // slow requests received
	stop    chan struct{} // closed by Stop: slow requests end at once
	once    sync.Once
}

func startDripServer(t *testing.T) *dripServer {
	t.Helper()
	d := &dripServer{answer: challengetest.StartHTTP01(t), slow: map[string]bool{}, stop: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.port = ln.Addr().(*net.TCPAddr).Port
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { d.Stop(); _ = srv.Close() })
	return d
}

func (d *dripServer) markSlow(token string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.slow[token] = true
}

// Stop ends every slow answer, so the validations behind them end too.
func (d *dripServer) Stop() { d.once.Do(func() { close(d.stop) }) }

func (d *dripServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	d.mu.Lock()
	slow := d.slow[token]
	d.mu.Unlock()
	if !slow {
		d.answer.ServeHTTP(w, r)
		return
	}
	d.arrived.Add(1)
	select {
	case <-d.stop:
		http.NotFound(w, r)
		return
	default:
	}
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-d.stop:
			return
		case <-tick.C:
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// TestFairnessBetweenAccounts: through a real acmed with 8 validation
// slots, one account's 40 challenges against slow-drip targets do not
// delay another account's validation beyond one --validation-timeout.
// The bound is the one the per-account cap promises (timeout plus slack
// for a few requests on loopback), derived from the configured timeout.
func TestFairnessBetweenAccounts(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		// max(1, 8/8): the slow account holds one slot, seven are free.
		{name: "default per-account cap"},
		// The slow account may fill every slot; its other jobs wait for
		// its own to end, so the other account's is first for a slot.
		{name: "per-account cap of every slot", args: []string{"--validation-max-per-account", "8"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { testFairness(t, tc.args...) })
	}
}

func testFairness(t *testing.T, args ...string) {
	const (
		timeout = 2 * time.Second
		slack   = timeout / 2
		slow    = 40
	)
	dns := challengetest.StartDNS(t)
	drip := startDripServer(t)
	s := startAcmed(t, t.TempDir(), append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(drip.port),
		"--validation-max-concurrent", "8", "--validation-timeout", timeout.String(), "--authz-reuse=false"}, args...)...)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	flood := newAccount(t, ctx, s)
	var ids []acme.AuthzID
	for i := range slow {
		ids = append(ids, acme.AuthzID{Type: "dns", Value: fmt.Sprintf("slow%02d.fair.example", i)})
	}
	o, err := flood.AuthorizeOrder(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	var chals []*acme.Challenge
	for _, u := range o.AuthzURLs {
		_, ch := challengeOf(t, ctx, flood, u, "http-01")
		drip.markSlow(ch.Token)
		chals = append(chals, ch)
	}
	// Every slow challenge is answered at once; each request returns
	// within acmed's short wait for its job, so all 40 are queued after.
	var wg sync.WaitGroup
	errs := make(chan error, len(chals))
	for _, ch := range chals {
		wg.Go(func() {
			if _, err := flood.Accept(ctx, ch); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("accept a slow challenge: %v", err)
	}
	if drip.arrived.Load() == 0 {
		t.Fatal("no slow validation reached its target")
	}

	other := newAccount(t, ctx, s)
	o2, err := other.AuthorizeOrder(ctx, []acme.AuthzID{{Type: "dns", Value: "other.fair.example"}})
	if err != nil {
		t.Fatal(err)
	}
	_, chal := challengeOf(t, ctx, other, o2.AuthzURLs[0], "http-01")
	keyAuth, err := other.HTTP01ChallengeResponse(chal.Token)
	if err != nil {
		t.Fatal(err)
	}
	drip.answer.Set(chal.Token, keyAuth)

	start := time.Now()
	got, err := other.Accept(ctx, chal)
	if err != nil {
		t.Fatal(err)
	}
	// Poll (not acme's Retry-After pacing) so the time seen is the
	// validation's, within a poll interval.
	for got.Status != acme.StatusValid {
		if got.Status == acme.StatusInvalid {
			t.Fatalf("other account's challenge invalid: %v", got.Error)
		}
		if time.Since(start) > 4*timeout {
			t.Fatalf("other account's challenge still %s after %s", got.Status, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond) // the poll's pace, not a wait for state
		if got, err = other.GetChallenge(ctx, chal.URI); err != nil {
			t.Fatal(err)
		}
	}
	took := time.Since(start)
	if took > timeout+slack {
		t.Errorf("other account's validation took %s with %d slow ones queued: beyond one --validation-timeout (%s) + %s", took, slow, timeout, slack)
	}
	t.Logf("other account's validation: valid after %s, %d slow requests so far", took, drip.arrived.Load())
	drip.Stop() // the slow account's remaining validations end fast, so acmed stops fast
}
