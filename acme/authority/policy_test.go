package authority_test

import (
	"net/http"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/policy"
)

// The global identifier policy is checked at new-order time: an order with
// an identifier outside it is refused with one subproblem per refused
// identifier, and nothing is written.
func TestNewOrderIdentifierPolicy(t *testing.T) {
	global := policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "**.wild.internal", "192.0.2.0/24"),
		Deny:  policy.MustParse("admin.apps.internal"),
	}
	tests := []struct {
		name    string
		policy  policy.Policy
		ids     []acme.Identifier
		refused []string // the subproblems' identifiers, in order; nil: the order is created
	}{
		{"no policy", policy.Policy{}, dnsIDs("anything.example", "*.example"), nil},
		{"allowed", global, append(dnsIDs("A.apps.internal", "*.wild.internal"), acme.Identifier{Type: acme.IdentifierIP, Value: "192.0.2.7"}), nil},
		{"one refused", global, dnsIDs("a.apps.internal", "admin.apps.internal"), []string{"admin.apps.internal"}},
		{"several refused", global,
			append(dnsIDs("a.example", "ok.apps.internal", "*.apps.internal", "apps.internal"), acme.Identifier{Type: acme.IdentifierIP, Value: "::ffff:198.51.100.1"}),
			[]string{"a.example", "*.apps.internal", "apps.internal", "198.51.100.1"}},
		{"deny only", policy.Policy{Deny: policy.MustParse("*.corp.example")}, dnsIDs("a.example", "*.corp.example", "x.CORP.example"),
			[]string{"*.corp.example", "x.corp.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *authority.Config) { c.IdentifierPolicy = tt.policy })
			acct := e.account(t)
			o, err := e.a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: tt.ids})
			if tt.refused == nil {
				if err != nil {
					t.Fatalf("NewOrder: %v", err)
				}
				if len(o.Authzs) != len(tt.ids) {
					t.Fatalf("%d authorizations for %d identifiers", len(o.Authzs), len(tt.ids))
				}
				return
			}
			wantProblem(t, "NewOrder", err, acme.ErrRejectedIdentifier)
			p := err.(*acme.Problem)
			if p.Status != http.StatusBadRequest || len(p.Subproblems) != len(tt.refused) {
				t.Fatalf("problem %+v; want 400 with %d subproblems", p, len(tt.refused))
			}
			for i, sub := range p.Subproblems {
				if sub.Type != acme.ErrRejectedIdentifier.Type || sub.Identifier == nil || sub.Identifier.Value != tt.refused[i] {
					t.Errorf("subproblem %d: %+v, want rejectedIdentifier for %s", i, sub, tt.refused[i])
				}
			}
			if ids, _, err := e.store.AccountOrders(t.Context(), acct.ID, "", 10); err != nil || len(ids) != 0 {
				t.Fatalf("a refused order was stored: %v, %v", ids, err)
			}
			if n := len(e.logs.events(t, "order.refuse")); n != 1 {
				t.Fatalf("%d order.refuse audit events, want 1", n)
			}
		})
	}
}

// A policy narrowed after an order was made (a restart with a new deny
// pattern) stops the order at finalize: nothing is issued.
func TestFinalizeIdentifierPolicy(t *testing.T) {
	e := newEnv(t, nil)
	acct := e.account(t)
	o := e.validOrder(t, acct, "a.apps.internal", "admin.apps.internal")
	e.cfg.IdentifierPolicy = policy.Policy{Deny: policy.MustParse("admin.apps.internal")}
	e.restart(t)
	_, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csrFor(t, "a.apps.internal", "admin.apps.internal"))
	wantProblem(t, "Finalize", err, acme.ErrRejectedIdentifier)
	if p := err.(*acme.Problem); len(p.Subproblems) != 1 || p.Subproblems[0].Identifier.Value != "admin.apps.internal" {
		t.Fatalf("problem %+v", p)
	}
	if n := e.sig.signedCount(); n != 0 {
		t.Fatalf("%d certificates signed", n)
	}
	if got, err := e.a.Order(t.Context(), authority.CallerOf(acct), o.ID); err != nil || got.Status != acme.StatusReady {
		t.Fatalf("order after a refused finalize: %v, %v; want it still ready", got, err)
	}
	ev := e.logs.events(t, "order.refuse")
	if len(ev) != 1 || ev[0]["step"] != "finalize" {
		t.Fatalf("order.refuse audit events: %v", ev)
	}
}
