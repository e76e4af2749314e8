package authority

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Limit names: the flag names of --rate-limit, and what a refusal's detail
// says. They are a contract.
const (
	LimitNewAccountsPerIP                      = "new-accounts-per-ip"
	LimitNewOrdersPerAccount                   = "new-orders-per-account"
	LimitPendingAuthorizationsPerAccount       = "pending-authorizations-per-account"
	LimitFailedValidationsPerAccountIdentifier = "failed-validations-per-account-identifier"
	LimitCertificatesPerIdentifierSet          = "certificates-per-identifier-set"
)

// Limits are the rate limits the authority enforces (DESIGN.md decision
// 9), each COUNT per PERIOD (storage.Limit, GCRA: COUNT at once, then one
// every PERIOD/COUNT); a zero one is off.
type Limits struct {
	NewAccountsPerIP    storage.Limit
	NewOrdersPerAccount storage.Limit
	// PendingAuthorizationsPerAccount is a cap with no period of its own:
	// new authorizations are counted (reused valid ones are not pending),
	// and given back when a validation's outcome is recorded, in the same
	// write. Those never answered expire pending with no write to give
	// them back: the count forgets COUNT of them per pending lifetime
	// (Config.OrderLifetime), its safety net. So an account has at most
	// COUNT pending at once, and even one that never answers any never
	// more than 2×COUNT (COUNT more created while the first ones wait out
	// their lifetime). Deactivating a pending authorization gives nothing
	// back (the safety net does, in time).
	PendingAuthorizationsPerAccount       int64
	FailedValidationsPerAccountIdentifier storage.Limit
	CertificatesPerIdentifierSet          storage.Limit
}

// DefaultLimits never get in the way of a fleet's renewals (a renewal
// reuses its valid authorizations), of the test suites or of acmebench's
// thousands of orders from one account, yet stop an account that floods
// the store with pending orders at 10,000 pending authorizations.
func DefaultLimits() Limits {
	return Limits{
		NewAccountsPerIP:                      storage.Limit{Count: 1000, Period: time.Hour},
		NewOrdersPerAccount:                   storage.Limit{Count: 10000, Period: time.Hour},
		PendingAuthorizationsPerAccount:       10000,
		FailedValidationsPerAccountIdentifier: storage.Limit{Count: 100, Period: time.Hour},
		CertificatesPerIdentifierSet:          storage.Limit{Count: 5000, Period: time.Hour},
	}
}

// LimitNames lists the limits --rate-limit takes, in the README's order.
func LimitNames() []string {
	return []string{LimitNewAccountsPerIP, LimitNewOrdersPerAccount, LimitPendingAuthorizationsPerAccount,
		LimitFailedValidationsPerAccountIdentifier, LimitCertificatesPerIdentifierSet}
}

// Set sets the limit called name; a cap (pending-authorizations-per-account)
// takes only l.Count and refuses a period, a rate refuses a count without
// one. A zero Limit turns the limit off.
func (ls *Limits) Set(name string, l storage.Limit) error {
	if name != LimitPendingAuthorizationsPerAccount && l.Count > 0 && l.Period <= 0 {
		return fmt.Errorf("%s is a rate: give COUNT/PERIOD, e.g. %s=100/1h", name, name)
	}
	switch name {
	case LimitNewAccountsPerIP:
		ls.NewAccountsPerIP = l
	case LimitNewOrdersPerAccount:
		ls.NewOrdersPerAccount = l
	case LimitPendingAuthorizationsPerAccount:
		if l.Period != 0 {
			return fmt.Errorf("%s is a cap: give COUNT with no period", name)
		}
		ls.PendingAuthorizationsPerAccount = l.Count
	case LimitFailedValidationsPerAccountIdentifier:
		ls.FailedValidationsPerAccountIdentifier = l
	case LimitCertificatesPerIdentifierSet:
		ls.CertificatesPerIdentifierSet = l
	default:
		return fmt.Errorf("unknown limit %q (known: %s)", name, strings.Join(LimitNames(), ", "))
	}
	return nil
}

// limit applies checks; a refusal is the client's rateLimited problem,
// naming the limit. Without a Limiter nothing is limited.
func (a *Authority) limit(ctx context.Context, checks ...storage.LimitCheck) error {
	if a.cfg.Limiter == nil {
		return nil
	}
	checks = slices.DeleteFunc(checks, func(c storage.LimitCheck) bool { return c.Limit.Off() })
	if len(checks) == 0 {
		return nil
	}
	d, err := a.cfg.Limiter.Limit(ctx, a.now(), checks)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return rateLimited(&storage.LimitError{Name: d.Refused, RetryAfter: d.RetryAfter})
	}
	return nil
}

// rateLimited is the client's problem for a refusal. Whole seconds,
// rounded up as Retry-After is: a client that waits what it is told is
// allowed.
func rateLimited(e *storage.LimitError) *acme.Problem {
	secs := (e.RetryAfter + time.Second - 1) / time.Second
	return acme.RateLimited(e.RetryAfter, "rate limit %s exceeded; retry after %v", e.Name, secs*time.Second)
}

// limiting is checks for a create to decide before it writes, as a
// create option (storage.Limiting): they cost no round trip of their own.
// None without a Limiter, which is the store (as for spending).
func (a *Authority) limiting(now time.Time, checks ...storage.LimitCheck) []storage.Option {
	if a.cfg.Limiter == nil {
		return nil
	}
	checks = slices.DeleteFunc(checks, func(c storage.LimitCheck) bool { return c.Limit.Off() })
	if len(checks) == 0 {
		return nil
	}
	return []storage.Option{storage.Limiting(now, checks...)}
}

// createRefused turns a create's *storage.LimitError into the client's
// rateLimited problem; other errors pass unchanged.
func createRefused(err error) error {
	var le *storage.LimitError
	if errors.As(err, &le) {
		return rateLimited(le)
	}
	return err
}

// newAccountLimit counts registrations per client IP; IPv6 clients per
// /64, the block one host usually holds. An unknown IP ("") is not limited.
func (a *Authority) newAccountLimit(clientIP string) []storage.LimitCheck {
	ip := net.ParseIP(clientIP)
	if ip == nil {
		return nil
	}
	key := ip.String()
	if ip.To4() == nil {
		key = (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
	}
	return []storage.LimitCheck{{Name: LimitNewAccountsPerIP, Key: "acct-ip:" + key,
		Limit: a.cfg.Limits.NewAccountsPerIP, Cost: 1}}
}

// newOrderLimits are checked at new-order, before the order is written:
// they spend one order and the new authorizations, and probe (spend
// nothing) the failed validations of each identifier and the
// certificates of the identifier set, which are spent when they happen.
// They ride in CreateOrder's script (storage.Limiting): all but the last
// share the account's scope, and so the order's slot; on a single Redis
// the last does too, and on a Cluster it is a step of its own.
func (a *Authority) newOrderLimits(acct *acme.Account, idents []acme.Identifier, newAuthzs int) []storage.LimitCheck {
	l := a.cfg.Limits
	checks := []storage.LimitCheck{
		{Name: LimitNewOrdersPerAccount, Key: "orders", Scope: acct.ID, Limit: l.NewOrdersPerAccount, Cost: 1},
	}
	if newAuthzs > 0 {
		checks = append(checks, a.pendingLimit(acct.ID, int64(newAuthzs)))
	}
	if !l.FailedValidationsPerAccountIdentifier.Off() {
		for _, id := range idents {
			checks = append(checks, a.failedValidationLimit(acct.ID, id, 0))
		}
	}
	return append(checks, a.certificatesLimit(idents, 0))
}

// failedValidationLimit counts failures per identifier without its
// wildcard label: a wildcard order's authorization is for the base name.
// pendingLimit counts an account's pending authorizations: spent at
// new-order, given back (cost -1) by the write that records a validation's
// outcome, and given back over the pending lifetime for those never
// answered, which expire pending.
func (a *Authority) pendingLimit(accountID string, cost int64) storage.LimitCheck {
	return storage.LimitCheck{Name: LimitPendingAuthorizationsPerAccount, Key: "pending-authzs", Scope: accountID,
		Limit: storage.Limit{Count: a.cfg.Limits.PendingAuthorizationsPerAccount, Period: a.cfg.OrderLifetime}, Cost: cost}
}

// spending is the counts a write records, as an update option; none
// without a Limiter.
func (a *Authority) spending(now time.Time, checks ...storage.LimitCheck) []storage.Option {
	if a.cfg.Limiter == nil {
		return nil
	}
	return []storage.Option{storage.Spending(now, checks...)}
}

func (a *Authority) failedValidationLimit(accountID string, id acme.Identifier, cost int64) storage.LimitCheck {
	id, _ = acme.SplitWildcard(id)
	return storage.LimitCheck{Name: LimitFailedValidationsPerAccountIdentifier, Key: "failed:" + string(id.Type) + ":" + id.Value,
		Scope: accountID, Limit: a.cfg.Limits.FailedValidationsPerAccountIdentifier, Cost: cost}
}

// certificatesLimit keys an identifier set by a hash of its sorted
// identifiers: the same names in any order are the same set, and a key
// stays short however many names there are.
func (a *Authority) certificatesLimit(idents []acme.Identifier, cost int64) storage.LimitCheck {
	names := make([]string, len(idents))
	for i, id := range idents {
		names[i] = string(id.Type) + ":" + id.Value
	}
	slices.Sort(names)
	sum := sha256.Sum256([]byte(strings.Join(names, ",")))
	return storage.LimitCheck{Name: LimitCertificatesPerIdentifierSet, Key: "certs:" + base64.RawURLEncoding.EncodeToString(sum[:18]),
		Limit: a.cfg.Limits.CertificatesPerIdentifierSet, Cost: cost}
}
