package acme

// Validation is the outcome of one challenge validation: what was checked
// and, when the check failed, the problem to show the client. A validator
// that could not reach an outcome (it did not perform the validation: no
// capacity before its deadline, its own deadline) returns an error
// instead, and the job is retried; such an error never fails a challenge.
type Validation struct {
	Records []ValidationRecord
	Problem *Problem // nil: the challenge is satisfied
}

// ValidationRecord is one step of a validation: one connection (http-01
// gets one per URL it fetched, redirects included) or one DNS check. It is
// kept with the challenge, shown in its JSON ("validationRecord", in the
// shape Let's Encrypt uses) and carried by the authorization's audit event:
// the trail of who proved control, from where.
type ValidationRecord struct {
	URL               string   // http-01: the URL fetched
	Hostname          string   // the name (or IP address) connected to or queried
	Port              string   // the port connected to
	AddressesResolved []string // the addresses DNS gave for Hostname
	AddressUsed       string   // the address connected to
	Queries           []DNSQuery
}

// DNSQuery is one DNS question a validation asked, with the answers it
// got; a CNAME followed is its own query.
type DNSQuery struct {
	Name    string
	Type    string // "A", "AAAA", "TXT", "CNAME"
	Answers []string
}
