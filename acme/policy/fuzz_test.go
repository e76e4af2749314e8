package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
)

// FuzzParse: no pattern makes Parse panic, an error always names the
// pattern on one line, and a pattern that parses can be matched against
// any identifier without panicking.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"host.example", "*.example", "**.example", "example.", "192.0.2.1", "192.0.2.0/24",
		"2001:db8::/32", "::ffff:192.0.2.0/120", "fe80::1%eth0", "*", "**", "*.", "a..b", "1.2.3", "::/0", ""} {
		f.Add(s, "a.example", false)
	}
	f.Add("**.example", "*.a.example", true)
	f.Add("10.0.0.0/8", "10.1.2.3", false)
	f.Fuzz(func(t *testing.T, pattern, value string, ip bool) {
		p, err := policy.Parse([]string{pattern})
		if err != nil {
			if !strings.Contains(err.Error(), fmt.Sprintf("%q", pattern)) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q does not name %q", err, pattern)
			}
			return
		}
		typ := acme.IdentifierDNS
		if ip {
			typ = acme.IdentifierIP
		}
		id, prob := acme.NormalizeIdentifier(acme.Identifier{Type: typ, Value: value})
		if prob != nil {
			return
		}
		base, wildcard := acme.SplitWildcard(id)
		if p.Allows(base, wildcard) && !p.Overlaps(base, wildcard) {
			t.Fatalf("%q allows %q but does not overlap it", pattern, value)
		}
		_ = (policy.Policy{Allow: p, Deny: p}).Check([]acme.Identifier{id}, p)
	})
}
