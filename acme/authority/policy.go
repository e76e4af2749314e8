package authority

import (
	"context"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
)

// checkIdentifiers refuses an order with an identifier outside the
// identifier policy (DESIGN.md decision 9: before any work is done or
// anything written). step is the request: at new-order time nothing is
// created; at finalize, nothing is issued for an order made before the
// policy was narrowed (a restart with a new deny pattern must stop the
// orders already in flight too). key holds the patterns of the account's EAB key (its
// allow and prevalidated ones), empty for an account without one: the
// global policy applies to every account, a key's patterns only narrow it.
// ids are normalised. The problem has one subproblem per refused
// identifier, even when there is one, so that a client reads them alike.
func (a *Authority) checkIdentifiers(ctx context.Context, step string, acct *acme.Account, ids []acme.Identifier, key ...policy.Patterns) error {
	refused := a.cfg.IdentifierPolicy.Check(ids, key...)
	if refused == nil {
		return nil
	}
	p := acme.RejectedIdentifier("%d of the order's %d identifiers may not be ordered by this account", len(refused), len(ids))
	values := make([]string, len(refused))
	for i, r := range refused {
		p.Subproblems = append(p.Subproblems, acme.RejectedIdentifier("%q is %s", r.Identifier.Value, r.Reason).For(r.Identifier))
		values[i] = r.Identifier.Value
	}
	a.audit(ctx, "order.refuse", "account", acct.ID, "identifiers", values, "step", step, "reason", "identifier policy")
	return p
}
