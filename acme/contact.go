package acme

import (
	"net/mail"
	"strings"
)

// maxContacts bounds what one account may list; nothing legitimate needs more.
const maxContacts = 10

// CheckContacts applies §7.3: only mailto: URIs, one address each, no header
// fields. Unknown schemes are unsupportedContact, bad addresses invalidContact.
func CheckContacts(contacts []string) *Problem {
	if len(contacts) > maxContacts {
		return InvalidContact("at most %d contacts are allowed", maxContacts)
	}
	for _, c := range contacts {
		scheme, addr, ok := strings.Cut(c, ":")
		if !ok || !strings.EqualFold(scheme, "mailto") {
			return UnsupportedContact("contact %q: only mailto: URIs are supported", c)
		}
		if strings.ContainsAny(addr, "?,") {
			return InvalidContact("contact %q: give one address per mailto: URI, with no header fields", c)
		}
		parsed, err := mail.ParseAddress(addr)
		if err != nil || parsed.Address != addr || parsed.Name != "" {
			return InvalidContact("contact %q: %q is not a valid email address", c, addr)
		}
		if _, domain, _ := strings.Cut(addr, "@"); dnsNameProblem(strings.ToLower(domain)) != "" {
			return InvalidContact("contact %q: %q is not a valid email domain", c, domain)
		}
	}
	return nil
}
