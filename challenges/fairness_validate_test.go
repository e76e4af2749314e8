package challenges

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

// drip answers 200 and then trickles one byte at a time, never finishing,
// until the client goes away: a target that holds a validation for its
// whole timeout. arrived is told of each request.
func drip(arrived chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		arrived <- struct{}{}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
				if _, err := w.Write([]byte("x")); err != nil {
					return
				}
				w.(http.Flusher).Flush()
			}
		}
	})
}

// TestFairnessSlowAccount: one account with 40 challenges against a
// slow-drip target, on a validator with 8 slots, does not delay another
// account's validation beyond one validation timeout. Without per-account
// caps the other account would queue behind 32 of the slow ones: four
// timeouts at least.
//
// The bound asserted is the correctness bound the design gives (one
// timeout, plus slack for the other validation's own few round trips on
// loopback), derived from the configured timeout, not a speed target.
func TestFairnessSlowAccount(t *testing.T) {
	const (
		slots   = 8
		slow    = 40
		timeout = 2 * time.Second
		slack   = timeout / 2
	)
	tests := []struct {
		name       string
		perAccount int // Config.MaxPerAccount
		running    int // the slow account's validations that reach the target
	}{
		// max(1, 8/8): the slow account holds one slot, seven are free.
		{name: "default per-account cap", perAccount: 0, running: 1},
		// The slow account may hold every slot; its others wait for its
		// token, not for a slot, so the other account is first in line.
		{name: "per-account cap of every slot", perAccount: slots, running: slots},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			arrived := make(chan struct{}, slow)
			slowTarget := drip(arrived)
			fast := respond(testKeyAuth)
			port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.URL.Path, "slow") {
					slowTarget.ServeHTTP(w, r)
					return
				}
				fast.ServeHTTP(w, r)
			}))
			v := New(Config{Resolver: NewResolver(startDNS(t, &testZone{})), HTTPPort: port,
				Timeout: timeout, MaxConcurrent: slots, MaxPerAccount: tc.perAccount})
			waitingForToken := make(chan struct{}, slow)
			v.gate.queued = func(account string, global bool) {
				if account == "slow-account" && !global {
					waitingForToken <- struct{}{}
				}
			}
			id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}

			// The slow account's jobs run until the test ends: it cancels
			// them and waits for them, so none outlives the server.
			slowCtx, stop := context.WithCancel(t.Context())
			var wg sync.WaitGroup
			t.Cleanup(func() { stop(); wg.Wait() })
			for i := range slow {
				token := fmt.Sprintf("slow%02d", i)
				wg.Go(func() {
					_, _ = v.Validate(slowCtx, "slow-account", acme.ChallengeHTTP01, id, token, token+".x")
				})
			}
			// Set: the slow account's cap reached at the target, the rest
			// waiting for its token.
			for range tc.running {
				<-arrived
			}
			for range slow - tc.running {
				<-waitingForToken
			}

			start := time.Now()
			out, err := v.Validate(t.Context(), "other-account", acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			took := time.Since(start)
			if err != nil || out.Problem != nil {
				t.Fatalf("other account's validation: %+v, %v", out, err)
			}
			if took > timeout+slack {
				t.Errorf("other account's validation took %s, beyond one validation timeout (%s) + %s", took, timeout, slack)
			}
			t.Logf("other account's validation took %s with %d slow ones in hand", took, slow)
		})
	}
}
