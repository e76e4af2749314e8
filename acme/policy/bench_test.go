package policy_test

import (
	"fmt"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
)

// BenchmarkNewOrderPolicyCheck is the policy's cost per new order: a realistic global
// policy (a few allow zones and networks, a few denied names) and an order
// of 1 or 10 names, all allowed (the common case); and the default, no
// policy at all.
func BenchmarkNewOrderPolicyCheck(b *testing.B) {
	p := policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "**.svc.cluster.local", "*.corp.example", "10.0.0.0/8", "fd00::/8"),
		Deny:  policy.MustParse("admin.apps.internal", "*.secret.apps.internal", "10.0.0.1"),
	}
	for _, tt := range []struct {
		name string
		p    policy.Policy
		n    int
	}{{"none", policy.Policy{}, 1}, {"none", policy.Policy{}, 10}, {"global", p, 1}, {"global", p, 10}} {
		n, p := tt.n, tt.p
		ids := make([]acme.Identifier, n)
		for i := range ids {
			ids[i] = acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("web-%d.team-a.apps.internal", i)}
		}
		b.Run(fmt.Sprintf("policy=%s/identifiers=%d", tt.name, n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := p.Check(ids); r != nil {
					b.Fatal(r)
				}
			}
		})
	}
}
