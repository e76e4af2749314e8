package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// rateLimits is --rate-limit NAME=COUNT/PERIOD, repeatable (and
// comma-separated in ACMED_RATE_LIMIT): each changes one limit of
// authority.DefaultLimits. NAME=0 or NAME=off turns one off; "off" alone
// turns every limit off. pending-authorizations-per-account is a cap:
// NAME=COUNT, with no period.
type rateLimits struct {
	set    []string // as given, for String
	limits *authority.Limits
}

func (r *rateLimits) String() string { return strings.Join(r.set, ",") }

func (r *rateLimits) Set(v string) error {
	if r.limits == nil {
		d := authority.DefaultLimits()
		r.limits = &d
	}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if err := r.set1(f); err != nil {
			return err
		}
		r.set = append(r.set, f)
	}
	return nil
}

func (r *rateLimits) set1(f string) error {
	if f == "off" {
		*r.limits = authority.Limits{}
		return nil
	}
	name, value, ok := strings.Cut(f, "=")
	if !ok {
		return fmt.Errorf("%q: want NAME=COUNT/PERIOD (e.g. new-orders-per-account=300/1h), NAME=off, or off", f)
	}
	l, err := parseLimit(value)
	if err != nil {
		return fmt.Errorf("%q: %v", f, err)
	}
	if err := r.limits.Set(name, l); err != nil {
		return fmt.Errorf("%q: %v", f, err)
	}
	return nil
}

// parseLimit reads COUNT/PERIOD, COUNT (a cap), 0 or off.
func parseLimit(v string) (storage.Limit, error) {
	if v == "off" || v == "0" {
		return storage.Limit{}, nil
	}
	count, period, hasPeriod := strings.Cut(v, "/")
	n, err := strconv.ParseInt(count, 10, 64)
	if err != nil || n < 0 {
		return storage.Limit{}, fmt.Errorf("count %q: want a whole number, 0 for off", count)
	}
	l := storage.Limit{Count: n}
	if hasPeriod {
		if l.Period, err = time.ParseDuration(period); err != nil || l.Period < time.Second {
			return storage.Limit{}, fmt.Errorf("period %q: want a duration of at least 1s, e.g. 1h", period)
		}
	}
	return l, nil // without a period, a cap: Limits.Set refuses it for a rate
}

// get returns the limits to enforce: the defaults with the flags' changes.
func (r *rateLimits) get() authority.Limits {
	if r.limits == nil {
		return authority.DefaultLimits()
	}
	return *r.limits
}
