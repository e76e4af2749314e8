// Package policy decides which identifiers an account may order. It holds
// the pattern language of --allow-identifier, --deny-identifier and (later)
// an EAB key's --allow and --prevalidated patterns, and the rule that
// combines them. It does no I/O: patterns are parsed once at start and
// matched on every new order, so matching allocates nothing.
//
// The language, one pattern per string:
//
//	host.example.com    exactly that DNS name
//	*.example.com       any name below example.com (a.example.com,
//	                    a.b.example.com), not example.com itself, and no
//	                    wildcard identifier
//	**.example.com      what *.example.com matches, and also wildcard
//	                    identifiers whose names are all below example.com:
//	                    *.example.com, *.team.example.com
//	192.0.2.7, 2001:db8::7          exactly that IP address
//	192.0.2.0/24, 2001:db8::/32     any IP address in that network
//
// Names are compared as acme.NormalizeIdentifier leaves them: lower case,
// LDH labels (internationalised names as their xn-- form). A pattern may end
// with a dot, which is dropped. IPv4-mapped IPv6 forms (::ffff:192.0.2.7,
// ::ffff:192.0.2.0/120) are the IPv4 address or network, as identifiers
// are; other IPv6 networks (::/0 included) hold IPv6 addresses only.
package policy

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/acmed/acmed/acme"
)

// Patterns is a parsed list of patterns. The zero value matches nothing.
// It is read-only once parsed, so one value may be shared by goroutines.
type Patterns struct {
	exact   map[string]struct{} // names
	parents map[string]struct{} // the parents of exact names: a wildcard *.p covers one
	below   map[string]struct{} // zones of *.zone and **.zone
	wild    map[string]struct{} // zones of **.zone
	addrs   map[netip.Addr]struct{}
	nets    []netip.Prefix
	src     []string
}

// PatternError is a bad pattern and what is wrong with it.
type PatternError struct {
	Pattern string
	Reason  string
}

func (e *PatternError) Error() string { return fmt.Sprintf("pattern %q: %s", e.Pattern, e.Reason) }

// Parse parses patterns. The error, a *PatternError, names the first bad
// pattern and says what is wrong with it.
func Parse(ss []string) (Patterns, error) {
	var p Patterns
	for _, s := range ss {
		if err := p.add(s); err != nil {
			return Patterns{}, &PatternError{Pattern: s, Reason: err.Error()}
		}
		p.src = append(p.src, s)
	}
	return p, nil
}

// MustParse is Parse for patterns known to be good (tests, constants).
func MustParse(ss ...string) Patterns {
	p, err := Parse(ss)
	if err != nil {
		panic(err)
	}
	return p
}

// Empty says whether p has no patterns.
func (p Patterns) Empty() bool { return len(p.src) == 0 }

// String lists the patterns as written, comma-separated.
func (p Patterns) String() string { return strings.Join(p.src, ",") }

type errString string

func (e errString) Error() string { return string(e) }

func (p *Patterns) add(s string) error {
	if s == "" {
		return errString("empty pattern")
	}
	if strings.ContainsAny(s, ":/") || isIPv4ish(s) {
		return p.addIP(s)
	}
	name := strings.TrimSuffix(s, ".")
	set := &p.exact
	switch {
	case strings.HasPrefix(name, "**."):
		name = name[3:]
		set = &p.wild
	case strings.HasPrefix(name, "*."):
		name = name[2:]
		set = &p.below
	}
	if strings.Contains(name, "*") {
		return errString("'*' may only be the first label, as in *.example.com (names below) or **.example.com (and wildcard certificates)")
	}
	if strings.HasSuffix(name, ".") {
		return errString("name has an empty label")
	}
	id, prob := acme.NormalizeIdentifier(acme.Identifier{Type: acme.IdentifierDNS, Value: name})
	if prob != nil {
		return errString(strings.TrimPrefix(prob.Detail, fmt.Sprintf("%q: ", name)))
	}
	name = id.Value
	addTo(set, name)
	switch set {
	case &p.wild:
		addTo(&p.below, name)
	case &p.exact:
		if _, parent, ok := strings.Cut(name, "."); ok {
			addTo(&p.parents, parent)
		}
	}
	return nil
}

// isIPv4ish says whether s looks like an IPv4 address rather than a name:
// all digits and dots. (A name's top label is never all digits.)
func isIPv4ish(s string) bool {
	return strings.Trim(s, "0123456789.") == ""
}

func (p *Patterns) addIP(s string) error {
	if strings.Contains(s, "%") {
		return errString("an IP address with a zone cannot be in a certificate")
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return errString("not an IP address, a CIDR or a DNS name")
		}
		if p.addrs == nil {
			p.addrs = map[netip.Addr]struct{}{}
		}
		p.addrs[a.Unmap()] = struct{}{}
		return nil
	}
	n, err := netip.ParsePrefix(s)
	if err != nil {
		return errString("not a CIDR such as 192.0.2.0/24 or 2001:db8::/32")
	}
	if n != n.Masked() {
		return errString(fmt.Sprintf("address has bits set outside the prefix; the network is %s", n.Masked()))
	}
	if a := n.Addr(); a.Is4In6() && n.Bits() >= 96 {
		n = netip.PrefixFrom(a.Unmap(), n.Bits()-96)
	}
	p.nets = append(p.nets, n)
	return nil
}

func addTo(m *map[string]struct{}, k string) {
	if *m == nil {
		*m = map[string]struct{}{}
	}
	(*m)[k] = struct{}{}
}

func has(m map[string]struct{}, k string) bool {
	_, ok := m[k]
	return ok
}

// Allows says whether p allows every name identifier id stands for: id is
// a normalised identifier without "*.", wildcard says it was one (the
// shape of acme.SplitWildcard and of an authorization). A wildcard is
// allowed only by a **.zone pattern.
func (p Patterns) Allows(id acme.Identifier, wildcard bool) bool {
	switch id.Type {
	case acme.IdentifierIP:
		return !wildcard && p.hasAddr(id.Value)
	case acme.IdentifierDNS:
		if wildcard {
			return has(p.wild, id.Value) || anyParent(p.wild, id.Value)
		}
		return has(p.exact, id.Value) || anyParent(p.below, id.Value)
	}
	return false
}

// Overlaps says whether p matches any name identifier id stands for. It
// is how a deny list reads: a wildcard *.zone is denied by a pattern that
// matches one name of zone's, so that a denied name cannot be had through
// a wildcard either.
func (p Patterns) Overlaps(id acme.Identifier, wildcard bool) bool {
	if !wildcard || id.Type != acme.IdentifierDNS {
		return p.Allows(id, wildcard)
	}
	return has(p.parents, id.Value) || has(p.below, id.Value) || anyParent(p.below, id.Value)
}

// anyParent says whether a zone above name (a proper suffix after a dot) is
// in m; it walks the labels, so its cost is the name's depth, not the
// number of patterns.
func anyParent(m map[string]struct{}, name string) bool {
	if len(m) == 0 {
		return false
	}
	for {
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
		if has(m, name) {
			return true
		}
	}
}

func (p Patterns) hasAddr(s string) bool {
	if len(p.addrs) == 0 && len(p.nets) == 0 {
		return false
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return false
	}
	a = a.Unmap()
	if _, ok := p.addrs[a]; ok {
		return true
	}
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}
