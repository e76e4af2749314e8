package main

import (
	"errors"
	"fmt"

	"github.com/acmed/acmed/acme/policy"
)

// identifierPolicy parses --allow-identifier and --deny-identifier; the
// error is one line naming the flag and the bad pattern.
func (c config) identifierPolicy() (policy.Policy, error) {
	allow, err := parsePatterns("--allow-identifier", c.AllowIdentifiers)
	if err != nil {
		return policy.Policy{}, err
	}
	deny, err := parsePatterns("--deny-identifier", c.DenyIdentifiers)
	if err != nil {
		return policy.Policy{}, err
	}
	return policy.Policy{Allow: allow, Deny: deny}, nil
}

func parsePatterns(flag string, values []string) (policy.Patterns, error) {
	p, err := policy.Parse(values)
	var pe *policy.PatternError
	if errors.As(err, &pe) {
		return p, fmt.Errorf("%s %q: %s", flag, pe.Pattern, pe.Reason)
	}
	return p, err
}
