package policy_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
)

func dns(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierDNS, Value: v} }
func ip(v string) acme.Identifier  { return acme.Identifier{Type: acme.IdentifierIP, Value: v} }

// normalised is an identifier as an order holds it, split as an
// authorization holds it.
func normalised(t *testing.T, id acme.Identifier) (acme.Identifier, bool) {
	t.Helper()
	n, p := acme.NormalizeIdentifier(id)
	if p != nil {
		t.Fatalf("test identifier %v: %v", id, p)
	}
	return acme.SplitWildcard(n)
}

func TestAllowsAndOverlaps(t *testing.T) {
	tests := []struct {
		pattern  string
		id       acme.Identifier
		allows   bool // Allows: every name the identifier stands for matches
		overlaps bool // Overlaps: some name does (how a deny list reads)
	}{
		// exact names
		{"host.example", dns("host.example"), true, true},
		{"host.example", dns("HOST.Example"), true, true},
		{"host.example.", dns("host.example"), true, true},
		{"Host.EXAMPLE", dns("host.example"), true, true},
		{"host.example", dns("a.host.example"), false, false},
		{"host.example", dns("example"), false, false},
		{"host.example", dns("otherhost.example"), false, false},
		{"host.example", dns("*.example"), false, true}, // *.example covers host.example
		{"host.example", dns("*.host.example"), false, false},
		// *.zone: names below the zone
		{"*.apps.internal", dns("a.apps.internal"), true, true},
		{"*.apps.internal", dns("a.b.apps.internal"), true, true},
		{"*.apps.internal", dns("apps.internal"), false, false},
		{"*.apps.internal", dns("xapps.internal"), false, false},
		{"*.apps.internal", dns("a.apps.internal.evil"), false, false},
		{"*.apps.internal", dns("*.apps.internal"), false, true},
		{"*.apps.internal", dns("*.team.apps.internal"), false, true},
		{"*.apps.internal", dns("*.internal"), false, false},
		{"*.APPS.internal.", dns("a.apps.internal"), true, true},
		// **.zone: names below, and wildcards whose names are all below
		{"**.apps.internal", dns("a.apps.internal"), true, true},
		{"**.apps.internal", dns("a.b.apps.internal"), true, true},
		{"**.apps.internal", dns("apps.internal"), false, false},
		{"**.apps.internal", dns("*.apps.internal"), true, true},
		{"**.apps.internal", dns("*.team.apps.internal"), true, true},
		{"**.apps.internal", dns("*.internal"), false, false},
		{"**.apps.internal", dns("*.xapps.internal"), false, false},
		// IPv4
		{"192.0.2.7", ip("192.0.2.7"), true, true},
		{"192.0.2.7", ip("192.0.2.8"), false, false},
		{"192.0.2.7", ip("::ffff:192.0.2.7"), true, true},
		{"::ffff:192.0.2.7", ip("192.0.2.7"), true, true},
		{"192.0.2.0/24", ip("192.0.2.255"), true, true},
		{"192.0.2.0/24", ip("192.0.3.0"), false, false},
		{"192.0.2.0/24", ip("::ffff:192.0.2.1"), true, true},
		{"::ffff:192.0.2.0/120", ip("192.0.2.9"), true, true},
		{"0.0.0.0/0", ip("198.51.100.1"), true, true},
		{"0.0.0.0/0", ip("2001:db8::1"), false, false},
		{"192.0.2.7", dns("host.example"), false, false},
		// IPv6
		{"2001:db8::7", ip("2001:db8::7"), true, true},
		{"2001:DB8:0::7", ip("2001:db8::7"), true, true},
		{"2001:db8::7", ip("2001:0db8:0000::0007"), true, true},
		{"2001:db8::7", ip("2001:db8::8"), false, false},
		{"2001:db8::/32", ip("2001:db8:ffff::1"), true, true},
		{"2001:db8::/32", ip("2001:db9::1"), false, false},
		{"::/0", ip("2001:db8::1"), true, true},
		{"::/0", ip("192.0.2.1"), false, false},
		{"::/0", ip("::ffff:192.0.2.1"), false, false}, // that is 192.0.2.1
		{"2001:db8::/32", dns("host.example"), false, false},
	}
	for _, tt := range tests {
		p, err := policy.Parse([]string{tt.pattern})
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.pattern, err)
		}
		id, wildcard := normalised(t, tt.id)
		if got := p.Allows(id, wildcard); got != tt.allows {
			t.Errorf("%q Allows %s (wildcard %v) = %v, want %v", tt.pattern, tt.id.Value, wildcard, got, tt.allows)
		}
		if got := p.Overlaps(id, wildcard); got != tt.overlaps {
			t.Errorf("%q Overlaps %s (wildcard %v) = %v, want %v", tt.pattern, tt.id.Value, wildcard, got, tt.overlaps)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "empty"},
		{"*", "'*'"}, // no bare wildcard: nothing allowed by accident
		{"**", "'*'"},
		{"*.", "'*'"},
		{"a.*.example", "'*'"},
		{"*.*.example", "'*'"},
		{"***.example", "'*'"},
		{"*example.com", "'*'"},
		{"bad_name.example", "character"},
		{"a..example", "empty label"},
		{"example..", "empty label"},
		{"-a.example", "hyphen"},
		{"host.123", "digits"},
		{strings.Repeat("a", 64) + ".example", "63"},
		{"1.2.3", "not an IP address"},
		{"192.0.2.256", "not an IP address"},
		{"192.0.2.0/33", "CIDR"},
		{"192.0.2.1/24", "192.0.2.0/24"},
		{"2001:db8::1/32", "2001:db8::/32"},
		{"fe80::1%eth0", "zone"},
		{"2001:db8::/129", "CIDR"},
		{"http://host.example", "not"},
		{"ünicode.example", "character"},
	}
	for _, tt := range tests {
		_, err := policy.Parse([]string{"ok.example", tt.pattern})
		if err == nil {
			t.Errorf("Parse(%q) succeeded", tt.pattern)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, fmt.Sprintf("%q", tt.pattern)) || !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
			t.Errorf("Parse(%q) = %q; want one line naming the pattern and containing %q", tt.pattern, msg, tt.want)
		}
	}
}

func TestCheck(t *testing.T) {
	global := policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "**.wild.internal", "10.0.0.0/8", "fd00::/8"),
		Deny:  policy.MustParse("admin.apps.internal", "*.secret.apps.internal", "10.0.0.1"),
	}
	denyOnly := policy.Policy{Deny: policy.MustParse("*.corp.example")}
	key := policy.MustParse("*.team.apps.internal", "10.1.0.0/16")
	prevalidated := policy.MustParse("ci.apps.internal")
	tests := []struct {
		name   string
		policy policy.Policy
		key    []policy.Patterns
		ids    []string // "ip:" prefix for IP identifiers
		want   string   // the refused, with reasons
	}{
		{"zero policy allows all", policy.Policy{}, nil, []string{"a.example", "*.example", "ip:192.0.2.1"}, ""},
		{"deny only", denyOnly, nil, []string{"a.example", "x.corp.example", "corp.example", "*.corp.example"}, "x.corp.example:1 *.corp.example:1"},
		{"allowed", global, nil, []string{"a.apps.internal", "ip:10.2.3.4", "ip:fd00::1", "*.wild.internal"}, ""},
		{"deny wins", global, nil, []string{"admin.apps.internal", "x.secret.apps.internal", "ip:10.0.0.1"},
			"admin.apps.internal:1 x.secret.apps.internal:1 10.0.0.1:1"},
		{"a wildcard over a denied name", global, nil, []string{"*.apps.internal"}, "*.apps.internal:1"},
		{"a wildcard needs **", global, nil, []string{"*.team.apps.internal"}, "*.team.apps.internal:2"},
		{"outside allow", global, nil, []string{"apps.internal", "a.example", "ip:192.0.2.1"},
			"apps.internal:2 a.example:2 192.0.2.1:2"},
		{"empty key patterns: global alone", global, []policy.Patterns{{}, {}}, []string{"a.apps.internal"}, ""},
		{"key narrows", global, []policy.Patterns{key, prevalidated},
			[]string{"a.team.apps.internal", "ci.apps.internal", "b.apps.internal", "ip:10.1.2.3", "ip:10.2.0.1", "admin.apps.internal"},
			"b.apps.internal:3 10.2.0.1:3 admin.apps.internal:1"},
		{"key cannot widen", global, []policy.Patterns{policy.MustParse("*.example")}, []string{"a.example"}, "a.example:2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []acme.Identifier
			for _, s := range tt.ids {
				id := dns(s)
				if v, ok := strings.CutPrefix(s, "ip:"); ok {
					id = ip(v)
				}
				n, p := acme.NormalizeIdentifier(id)
				if p != nil {
					t.Fatal(p)
				}
				ids = append(ids, n)
			}
			var got []string
			for _, r := range tt.policy.Check(ids, tt.key...) {
				got = append(got, fmt.Sprintf("%s:%d", r.Identifier.Value, r.Reason))
			}
			if strings.Join(got, " ") != tt.want {
				t.Fatalf("refused %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// The check of an order that passes allocates nothing.
func TestCheckAllocations(t *testing.T) {
	p := policy.Policy{
		Allow: policy.MustParse("*.apps.internal", "**.wild.internal", "10.0.0.0/8", "fd00::/8"),
		Deny:  policy.MustParse("admin.apps.internal", "*.secret.apps.internal"),
	}
	ids := []acme.Identifier{dns("a.b.apps.internal"), dns("*.wild.internal"), ip("10.1.2.3"), ip("fd00::1")}
	if n := testing.AllocsPerRun(100, func() {
		if r := p.Check(ids); r != nil {
			t.Fatal(r)
		}
	}); n != 0 {
		t.Fatalf("%v allocations per Check, want 0", n)
	}
}

func TestString(t *testing.T) {
	p := policy.MustParse("*.a.example", "10.0.0.0/8")
	if p.String() != "*.a.example,10.0.0.0/8" || p.Empty() || !(policy.Patterns{}).Empty() {
		t.Fatalf("String %q, Empty %v", p.String(), p.Empty())
	}
}
