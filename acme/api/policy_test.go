package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/policy"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/embedded"
)

// newPolicyEnv is newEnv with a global identifier policy. (startEnv takes
// no authority settings; this keeps its signature as other tests use it.)
func newPolicyEnv(t *testing.T, p policy.Policy) *env {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	signer, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, clock: &clock{now: time.Now()}, http01: challengetest.StartHTTP01(t), dns: challengetest.StartDNS(t), store: store}
	auth, err := authority.New(authority.Config{
		Store: store, Signer: signer, Now: e.clock.Now, Logger: log, IdentifierPolicy: p,
		Validator: challenges.New(challenges.Config{Resolver: challenges.NewResolver(e.dns.Addr), HTTPPort: e.http01.Port, Timeout: 5 * time.Second}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = auth.Run(ctx); close(done) }()
	srv := httptest.NewUnstartedServer(nil)
	e.base = "http://" + srv.Listener.Addr().String()
	srv.Config.Handler = api.New(api.Config{Authority: auth, BaseURL: e.base, RootsPEM: signer.RootPEM(), Logger: log})
	srv.Start()
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	return e
}

// Over real HTTP: an order outside the global identifier policy is a 400
// rejectedIdentifier with one subproblem per refused identifier; one
// inside it is issued.
func TestNewOrderIdentifierPolicy(t *testing.T) {
	e := newPolicyEnv(t, policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "192.0.2.0/24"),
		Deny:  policy.MustParse("admin.apps.internal"),
	})
	c := e.newClient()
	c.register()
	for _, tt := range []struct {
		name    string
		ids     []acme.Identifier
		refused []string
	}{
		{"one refused", []acme.Identifier{{Type: "dns", Value: "Admin.apps.internal"}}, []string{"admin.apps.internal"}},
		{"some refused", []acme.Identifier{{Type: "dns", Value: "a.apps.internal"}, {Type: "dns", Value: "a.example"},
			{Type: "ip", Value: "198.51.100.1"}, {Type: "dns", Value: "*.apps.internal"}},
			[]string{"a.example", "198.51.100.1", "*.apps.internal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post(e.url("/acme/new-order"), map[string]any{"identifiers": tt.ids}, jwsOpts{})
			problemType(t, r, http.StatusBadRequest, "rejectedIdentifier")
			p := r.problem(t)
			if len(p.Subproblems) != len(tt.refused) {
				t.Fatalf("%d subproblems, want %d: %s", len(p.Subproblems), len(tt.refused), r.body)
			}
			for i, sub := range p.Subproblems {
				if sub.Type != acme.ErrRejectedIdentifier.Type || sub.Identifier == nil || sub.Identifier.Value != tt.refused[i] || sub.Detail == "" {
					t.Errorf("subproblem %d: %+v, want rejectedIdentifier for %s", i, sub, tt.refused[i])
				}
			}
			if r.header.Get("Location") != "" || r.header.Get("Replay-Nonce") == "" {
				t.Errorf("Location %q, Replay-Nonce %q", r.header.Get("Location"), r.header.Get("Replay-Nonce"))
			}
		})
	}
	o := c.newOrder("web.apps.internal", "api.team.apps.internal")
	c.authorize(o)
	var fin order
	c.must(http.StatusOK, o.Finalize, map[string]string{"csr": csrDER(t, newKey(t), "", "web.apps.internal", "api.team.apps.internal")}, &fin)
	if fin.Status != "valid" || fin.Certificate == "" {
		t.Fatalf("allowed order: %+v", fin)
	}
}
