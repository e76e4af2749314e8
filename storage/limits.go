package storage

import (
	"context"
	"fmt"
	"time"
)

// Limit allows Count requests at once, then one more every Period/Count
// (GCRA: the generic cell rate algorithm, a token bucket kept as one
// timestamp). A zero Count or Period is no limit.
type Limit struct {
	Count  int64
	Period time.Duration
}

// Off reports whether l limits nothing.
func (l Limit) Off() bool { return l.Count <= 0 || l.Period <= 0 }

// LimitCheck is one limit applied to one key.
type LimitCheck struct {
	// Name is the limit's name, returned in a refusal.
	Name string
	// Key names what is counted (an account, an IP, an identifier set).
	// With Scope set it is kept with the account's other keys (Redis:
	// one hash tag, so one Cluster slot).
	Key   string
	Scope string // an account ID, or ""
	Limit Limit
	// Cost is what the request spends; 0 only asks whether a request of
	// cost 1 would be allowed now, and spends nothing.
	Cost int64
}

// LimitDecision is the outcome of a Limiter.Limit call.
type LimitDecision struct {
	Allowed bool
	// Refused names the check that refused (its Name), and RetryAfter is
	// how long until it would allow the request.
	Refused    string
	RetryAfter time.Duration
}

// Limiter keeps rate limit state where every replica sees it (DESIGN.md
// decision 9). State expires by itself once it no longer limits anything.
type Limiter interface {
	// Limit applies checks at now: if every one allows its cost, each is
	// spent and the decision is Allowed; otherwise the decision names the
	// first check that refused. The checks sharing a Scope are decided
	// and spent atomically; checks of different scopes are decided apart
	// (a Redis Cluster keeps them in different slots), so a request one
	// scope refuses may already have spent in another.
	Limit(ctx context.Context, now time.Time, checks []LimitCheck) (LimitDecision, error)
}

// GCRA decides one request of cost (0: a probe for cost 1 that spends
// nothing) at now, against the theoretical arrival time tat (the zero
// value when none is stored). All times are microseconds since the epoch,
// as the Redis script computes them, so both backends agree to the unit.
// It returns the tat to store (the same tat when refused or probing), and
// when refused how long until the request would be allowed.
func GCRA(l Limit, tat, now, cost int64) (next, retryAfter int64, ok bool) {
	period := l.Period.Microseconds()
	interval := max(period/l.Count, 1)
	base := max(tat, now)
	next = base + max(cost, 1)*interval
	if allowAt := next - period; allowAt > now {
		return tat, allowAt - now, false
	}
	if cost == 0 {
		return tat, 0, true
	}
	return next, 0, true
}

// Spending spends checks at now with an update's write, if it writes, in
// the same step where the backend can (Redis: the write's script when
// they share a slot). Nothing is refused: it counts what the write
// records (a failed validation, a certificate), and a negative Cost gives
// back (an authorization that left pending).
func Spending(now time.Time, checks ...LimitCheck) Option {
	return func(o *Options) { o.Spend, o.SpendAt = checks, now }
}

// GCRASpend is GCRA for what already happened: it spends cost (giving
// back when negative) whatever the limit says, and never sets the tat
// before now, where it would limit nothing anyway.
func GCRASpend(l Limit, tat, now, cost int64) int64 {
	period := l.Period.Microseconds()
	interval := max(period/l.Count, 1)
	return max(max(tat, now)+cost*interval, now)
}

// Limiting decides checks at now with a CreateOrder, before it writes
// anything: if one refuses, nothing is written or spent and CreateOrder
// returns a *LimitError; if all allow, each is spent with the write, in
// the same atomic step where the backend can (Redis: the create script,
// for checks in its slot; checks a Cluster keeps in another slot are
// decided apart, first, as by Limiter.Limit). A write that fails for any
// other reason spends nothing.
func Limiting(now time.Time, checks ...LimitCheck) Option {
	return func(o *Options) { o.Check, o.CheckAt = checks, now }
}

// LimitError is a refusal by a check of Limiting: the check's Name, and
// how long until it would allow the request.
type LimitError struct {
	Name       string
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("storage: rate limit %s exceeded; retry after %v", e.Name, e.RetryAfter)
}
