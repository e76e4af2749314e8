package acme

import (
	"net/netip"
	"strings"
)

// NormalizeIdentifier checks an identifier a client asked for and returns it
// in canonical form: DNS names lower case. The problem it returns names the
// identifier and says what is wrong with it.
func NormalizeIdentifier(id Identifier) (Identifier, *Problem) {
	switch id.Type {
	case IdentifierDNS:
		name := strings.ToLower(id.Value)
		if reason := dnsNameProblem(name); reason != "" {
			return id, RejectedIdentifier("%q: %s", id.Value, reason).For(id)
		}
		return Identifier{Type: IdentifierDNS, Value: name}, nil
	case IdentifierIP:
		return id, UnsupportedIdentifier("ip identifiers are not supported yet").For(id)
	default:
		return id, UnsupportedIdentifier("identifier type %q is not supported; use \"dns\"", id.Type).For(id)
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
	case strings.HasPrefix(name, "*."):
		return "wildcard names are not supported"
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
