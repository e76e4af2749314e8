package policy

import "github.com/acmed/acmed/acme"

// Policy is the global identifier policy: --allow-identifier and
// --deny-identifier. The zero value allows everything.
type Policy struct {
	Allow Patterns
	Deny  Patterns
}

// Reason says why an identifier was refused.
type Reason int

const (
	// Denied: a deny pattern matches a name the identifier stands for.
	Denied Reason = iota + 1
	// NotAllowed: there are allow patterns and none allows it.
	NotAllowed
	// NotAllowedForKey: the account's key has patterns and none allows it.
	NotAllowedForKey
)

func (r Reason) String() string {
	switch r {
	case Denied:
		return "denied by the server's identifier policy"
	case NotAllowed:
		return "not allowed by the server's identifier policy"
	case NotAllowedForKey:
		return "not allowed for this account by its external account binding"
	}
	return "refused"
}

// Refusal is one identifier a policy refused, and why.
type Refusal struct {
	Identifier acme.Identifier // as in the order: a wildcard keeps its "*."
	Reason     Reason
}

// Check returns the identifiers of an order that may not be ordered, or
// nil. ids are normalised (acme.NormalizeIdentifier). key holds the
// patterns of the account's EAB key (its allow and its prevalidated
// ones); when any of them is non-empty, an identifier must also be allowed
// by one of them. Rule: deny wins; with no allow patterns everything not
// denied is allowed; with allow patterns an identifier must match one.
func (p Policy) Check(ids []acme.Identifier, key ...Patterns) []Refusal {
	keyBound := false
	for _, k := range key {
		keyBound = keyBound || !k.Empty()
	}
	if !keyBound && p.Allow.Empty() && p.Deny.Empty() {
		return nil // the default: no policy, nothing to look at
	}
	var refused []Refusal
	for _, id := range ids {
		if r := p.check(id, keyBound, key); r != 0 {
			refused = append(refused, Refusal{Identifier: id, Reason: r})
		}
	}
	return refused
}

func (p Policy) check(id acme.Identifier, keyBound bool, key []Patterns) Reason {
	base, wildcard := acme.SplitWildcard(id)
	if p.Deny.Overlaps(base, wildcard) {
		return Denied
	}
	if !p.Allow.Empty() && !p.Allow.Allows(base, wildcard) {
		return NotAllowed
	}
	if keyBound && !anyAllows(key, base, wildcard) {
		return NotAllowedForKey
	}
	return 0
}

func anyAllows(key []Patterns, id acme.Identifier, wildcard bool) bool {
	for _, k := range key {
		if k.Allows(id, wildcard) {
			return true
		}
	}
	return false
}
