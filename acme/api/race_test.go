package api_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/acmed/acmed/acme"
)

// TestConcurrentFinalize: however many finalize requests race, one wins and
// the order gets exactly one certificate (DESIGN.md decision 2).
func TestConcurrentFinalize(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	o := c.newOrder("race.example")
	c.authorize(o)

	const n = 20
	var wg sync.WaitGroup
	statuses := make([]int, n)
	bodies := make([]*response, n)
	for i := range n {
		csr := csrDER(t, newKey(t), "", "race.example")
		wg.Go(func() {
			bodies[i] = c.post(o.Finalize, map[string]string{"csr": csr}, jwsOpts{})
			statuses[i] = bodies[i].status
		})
	}
	wg.Wait()
	ok := 0
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusForbidden:
			if p := bodies[i].problem(t); p.Type != acme.ErrOrderNotReady.Type {
				t.Errorf("losing finalize: %s", p.Type)
			}
		default:
			t.Errorf("finalize status %d: %s", s, bodies[i].body)
		}
	}
	if ok != 1 {
		t.Fatalf("%d finalize requests succeeded, want exactly 1", ok)
	}
}

// TestConcurrentChallengeResponses: racing responses start one validation.
func TestConcurrentChallengeResponses(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	o := c.newOrder("once.example")
	var az authz
	c.must(200, o.Authorizations[0], nil, &az)
	ch := az.Challenges[0]
	e.http01.Set(ch.Token, acme.KeyAuthorization(ch.Token, c.thumbprint()))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if r := c.post(ch.URL, map[string]any{}, jwsOpts{}); r.status != http.StatusOK {
				t.Errorf("challenge response %d: %s", r.status, r.body)
			}
		})
	}
	wg.Wait()
	c.waitAuthz(o.Authorizations[0], "valid")
	if hits := e.http01.Hits(ch.Token); hits != 1 {
		t.Fatalf("validation fetched the token %d times, want 1", hits)
	}
}

// TestRevocationAuthority: §7.6 lets an account revoke a certificate it did
// not order only when it holds valid authorizations for all its names.
func TestRevocationAuthority(t *testing.T) {
	e := newEnv(t)
	owner := e.newClient()
	owner.register()
	o := owner.newOrder("rv.example")
	owner.authorize(o)
	var fin order
	owner.must(200, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "rv.example")}, &fin)
	chain := owner.must(200, fin.Certificate, nil, nil)
	der := leafDER(t, chain.body)

	stranger := e.newClient()
	stranger.register()
	problemType(t, stranger.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": der}, jwsOpts{}), 403, "unauthorized")
	problemType(t, stranger.post(e.url("/acme/revoke-cert"), map[string]any{"certificate": der}, jwsOpts{useJWK: true}), 403, "unauthorized")

	holder := e.newClient()
	holder.register()
	holder.authorize(holder.newOrder("rv.example"))
	holder.must(200, e.url("/acme/revoke-cert"), map[string]any{"certificate": der, "reason": 4}, nil)
}
