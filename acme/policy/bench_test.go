package policy_test

import (
	"fmt"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
)

// BenchmarkCheck is the policy's cost per new order: a realistic global
// policy (a few allow zones and networks, a few denied names) and an order
// of 1 or 10 names, all allowed (the common case).
func BenchmarkCheck(b *testing.B) {
	p := policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "**.svc.cluster.local", "*.corp.example", "10.0.0.0/8", "fd00::/8"),
		Deny:  policy.MustParse("admin.apps.internal", "*.secret.apps.internal", "10.0.0.1"),
	}
	for _, n := range []int{1, 10} {
		ids := make([]acme.Identifier, n)
		for i := range ids {
			ids[i] = acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("web-%d.team-a.apps.internal", i)}
		}
		b.Run(fmt.Sprintf("identifiers=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if r := p.Check(ids); r != nil {
					b.Fatal(r)
				}
			}
		})
	}
}
