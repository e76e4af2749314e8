package acme

import (
	"net/netip"
	"strings"
)

// NormalizeIdentifier checks an identifier a client asked for and returns it
// in canonical form: DNS names lower case, IP addresses as RFC 5952 text.
// The problem it returns names the identifier and says what is wrong.
func NormalizeIdentifier(id Identifier) (Identifier, *Problem) {
	switch id.Type {
	case IdentifierDNS:
		name := strings.ToLower(id.Value)
		base, _ := strings.CutPrefix(name, "*.")
		if reason := dnsNameProblem(base); reason != "" {
			return id, RejectedIdentifier("%q: %s", id.Value, reason).For(id)
		}
		return Identifier{Type: IdentifierDNS, Value: name}, nil
	case IdentifierIP:
		addr, err := netip.ParseAddr(id.Value)
		if err != nil || addr.Zone() != "" {
			return id, RejectedIdentifier("%q is not an IP address", id.Value).For(id)
		}
		return Identifier{Type: IdentifierIP, Value: addr.Unmap().String()}, nil
	default:
		return id, UnsupportedIdentifier("identifier type %q is not supported; use \"dns\" or \"ip\"", id.Type).For(id)
	}
}

// SplitWildcard returns the identifier an authorization is for: a wildcard
// name without its "*." (RFC 8555 §7.1.3), and whether it was one.
func SplitWildcard(id Identifier) (Identifier, bool) {
	if id.Type != IdentifierDNS {
		return id, false
	}
	base, ok := strings.CutPrefix(id.Value, "*.")
	return Identifier{Type: id.Type, Value: base}, ok
}

// ChallengeTypes lists the challenges that can prove control of an
// identifier: a wildcard only through DNS (§8.4), an IP address never
// through DNS (RFC 8738 §7).
func ChallengeTypes(id Identifier, wildcard bool) []ChallengeType {
	switch {
	case wildcard:
		return []ChallengeType{ChallengeDNS01}
	case id.Type == IdentifierIP:
		return []ChallengeType{ChallengeHTTP01, ChallengeTLSALPN01}
	default:
		return []ChallengeType{ChallengeHTTP01, ChallengeDNS01, ChallengeTLSALPN01}
	}
}

// dnsNameProblem returns why name is not a valid DNS name for a certificate,
// or "" when it is. Rules: RFC 1035 LDH labels, as CAs apply them.
func dnsNameProblem(name string) string {
	switch {
	case name == "":
		return "name is empty"
	case len(name) > 253:
		return "name is longer than 253 characters"
	case strings.HasSuffix(name, "."):
		return "name ends with a dot"
	case strings.Contains(name, "*"):
		return "a wildcard may only be the whole first label, as in *.example.com"
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return "an IP address is not a DNS name; use an \"ip\" identifier"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		switch {
		case l == "":
			return "name has an empty label"
		case len(l) > 63:
			return "label is longer than 63 characters"
		case l[0] == '-' || l[len(l)-1] == '-':
			return "label starts or ends with a hyphen"
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "name contains a character other than a-z, 0-9, '-' and '.'"
			}
		}
	}
	if tld := labels[len(labels)-1]; strings.Trim(tld, "0123456789") == "" {
		return "top-level label is all digits"
	}
	return ""
}
