package authority

import (
	"context"
	"errors"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// maxIdentifiers bounds one order whatever its profile; larger SAN lists
// are refused before any work. Profiles allow 100 by default.
const maxIdentifiers = 1000

// NewOrderRequest is the payload of newOrder (§7.4), with the profile of
// draft-ietf-acme-profiles ("" for none) and the ARI certID of the
// certificate the order replaces (RFC 9773 §5, "" for none).
type NewOrderRequest struct {
	Identifiers []acme.Identifier
	NotBefore   time.Time
	NotAfter    time.Time
	Profile     string
	Replaces    string
}

// Order is an order as a client sees it: its derived status and its
// authorizations.
type Order struct {
	*acme.Order
	Authzs []*acme.Authorization
}

// NewOrder checks the identifiers and creates an order with one new
// authorization per identifier.
func (a *Authority) NewOrder(ctx context.Context, acct *acme.Account, req NewOrderRequest) (*Order, error) {
	if len(req.Identifiers) == 0 {
		return nil, acme.Malformed("order has no identifiers")
	}
	if len(req.Identifiers) > maxIdentifiers {
		return nil, acme.RejectedIdentifier("order has %d identifiers; at most %d are allowed", len(req.Identifiers), maxIdentifiers)
	}
	now := a.now()
	var idents []acme.Identifier
	var problems []*acme.Problem
	seen := map[acme.Identifier]bool{}
	for _, raw := range req.Identifiers {
		id, p := acme.NormalizeIdentifier(raw)
		if p != nil {
			problems = append(problems, p)
			continue
		}
		if !seen[id] {
			seen[id] = true
			idents = append(idents, id)
		}
	}
	if len(problems) > 0 {
		return nil, acme.Compound(problems, "%d of the order's identifiers were refused", len(problems))
	}
	bound, err := a.accountKey(ctx, acct)
	if err != nil {
		return nil, err
	}
	prof, p := bound.profile(a.cfg.Profiles, req.Profile)
	if p != nil {
		return nil, p
	}
	if p := prof.CheckIdentifiers(idents); p != nil {
		return nil, p
	}
	if _, _, p := prof.Window(now, req.NotBefore, req.NotAfter, bound.limit(prof)); p != nil {
		return nil, p
	}
	if err := a.checkIdentifiers(ctx, "new-order", acct, idents, bound.patterns()...); err != nil {
		return nil, err
	}
	replaces := ""
	if req.Replaces != "" {
		// Checked last: it reads the store, which an order refused for
		// its identifiers or profile need not.
		if replaces, err = a.replacing(ctx, acct, idents, req.Replaces); err != nil {
			return nil, err
		}
	}

	expires := now.Add(a.cfg.OrderLifetime)
	o := &acme.Order{
		AccountID: acct.ID, Status: acme.StatusPending, Identifiers: idents,
		Expires: expires, NotBefore: req.NotBefore, NotAfter: req.NotAfter, CreatedAt: now, Profile: prof.Name,
		Replaces: replaces,
	}
	if o.ID, err = a.accountScopedID(acct); err != nil {
		return nil, err
	}
	all := make([]*acme.Authorization, len(idents))
	var created []*acme.Authorization
	for i, id := range idents {
		if all[i], err = a.reusableAuthorization(ctx, acct, id, now); err != nil {
			return nil, err
		}
		if all[i] == nil {
			if bound.prevalidated(id) {
				all[i], err = a.prevalidatedAuthorization(acct, id, now)
			} else {
				all[i], err = a.newAuthorization(acct, id, expires)
			}
			if err != nil {
				return nil, err
			}
			created = append(created, all[i])
		}
		o.AuthzIDs = append(o.AuthzIDs, all[i].ID)
	}
	pending := 0 // prevalidated authorizations are born valid: not pending
	for _, az := range created {
		if az.Status == acme.StatusPending {
			pending++
		}
	}
	limits := a.limiting(now, a.newOrderLimits(acct, idents, pending)...)
	if err := a.cfg.Store.CreateOrder(ctx, o, created, limits...); err != nil {
		return nil, createRefused(err)
	}
	attrs := []any{"account", acct.ID, "order", o.ID, "identifiers", identifierValues(idents), "profile", prof.Name, "authzs", o.AuthzIDs}
	if replaces != "" {
		attrs = append(attrs, "replaces", replaces)
	}
	if !o.NotAfter.IsZero() {
		attrs = append(attrs, "not_after", o.NotAfter)
	}
	if bound.key != nil {
		attrs = append(attrs, "eab_kid", bound.key.KID)
	}
	a.audit(ctx, "order.create", attrs...)
	for _, az := range created {
		if az.Status == acme.StatusValid {
			a.audit(ctx, "authorization.prevalidate", "account", acct.ID, "authz", az.ID,
				"identifier", az.Identifier.Value, "wildcard", az.Wildcard, "eab_kid", bound.key.KID, "eab_name", bound.key.Name)
		}
	}
	return a.view(o, all), nil
}

// reusableAuthorization returns the account's valid authorization for id,
// if reuse is on and one has not expired; nil otherwise.
func (a *Authority) reusableAuthorization(ctx context.Context, acct *acme.Account, id acme.Identifier, now time.Time) (*acme.Authorization, error) {
	if a.cfg.DisableAuthzReuse {
		return nil, nil
	}
	base, wildcard := acme.SplitWildcard(id)
	az, err := a.cfg.Store.ValidAuthorization(ctx, acct.ID, base, wildcard)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if acme.AuthzStatus(az, now) != acme.StatusValid {
		return nil, nil
	}
	return az, nil
}

func (a *Authority) newAuthorization(acct *acme.Account, id acme.Identifier, expires time.Time) (*acme.Authorization, error) {
	authzID, err := a.accountScopedID(acct)
	if err != nil {
		return nil, err
	}
	base, wildcard := acme.SplitWildcard(id)
	az := &acme.Authorization{ID: authzID, AccountID: acct.ID, Identifier: base, Wildcard: wildcard,
		Status: acme.StatusPending, Expires: expires}
	for _, typ := range acme.ChallengeTypes(base, wildcard) {
		chID, err := a.randomID(8)
		if err != nil {
			return nil, err
		}
		// 256 bits: well over the 128 bits of entropy §8.1 asks of a token.
		token, err := a.randomID(32)
		if err != nil {
			return nil, err
		}
		az.Challenges = append(az.Challenges, acme.Challenge{ID: chID, Type: typ, Token: token, Status: acme.StatusPending})
	}
	return az, nil
}

// accountScopedID makes an order or authorization ID that starts with its
// account's ID (storage.ScopedID), so a store may keep an account's
// resources together, e.g. in one Redis Cluster slot.
func (a *Authority) accountScopedID(acct *acme.Account) (string, error) {
	id, err := a.randomID(12)
	if err != nil {
		return "", err
	}
	return storage.ScopedID(acct.ID, id), nil
}

// Order returns one of the account's orders with its status derived.
func (a *Authority) Order(ctx context.Context, c *Caller, id string) (*Order, error) {
	o, authzs, err := a.ownOrder(ctx, c, id)
	if err != nil {
		return nil, err
	}
	return a.view(o, authzs), nil
}

// ownOrder loads one of the caller's orders as stored, and its
// authorizations.
func (a *Authority) ownOrder(ctx context.Context, c *Caller, id string) (*acme.Order, []*acme.Authorization, error) {
	o, err := a.loadOrder(ctx, c, id)
	if err != nil {
		return nil, nil, notFound(err, "order")
	}
	if o.AccountID != c.Account.ID {
		return nil, nil, acme.Unauthorized("order belongs to another account")
	}
	authzs, err := a.cfg.Store.Authorizations(ctx, o.AuthzIDs)
	if err != nil {
		// An authorization the order lists is gone (expired and swept
		// before the order): the order can no longer be shown or used.
		return nil, nil, notFound(err, "an authorization of the order")
	}
	return o, authzs, nil
}

// view sets the derived statuses on copies a client may see.
func (a *Authority) view(o *acme.Order, authzs []*acme.Authorization) *Order {
	now := a.now()
	v := *o
	v.Status = acme.OrderStatus(o, authzs, now)
	if v.Status == acme.StatusInvalid && v.Error == nil {
		v.Error = a.orderError(authzs, now)
	}
	return &Order{Order: &v, Authzs: authzs}
}

// orderError explains why an order became invalid through its
// authorizations, per identifier.
func (a *Authority) orderError(authzs []*acme.Authorization, now time.Time) *acme.Problem {
	var subs []*acme.Problem
	for _, az := range authzs {
		st := acme.AuthzStatus(az, now)
		if st == acme.StatusValid || st == acme.StatusPending {
			continue
		}
		p := acme.Unauthorized("authorization is %s", st)
		for _, ch := range az.Challenges {
			if ch.Error != nil {
				p = ch.Error
			}
		}
		subs = append(subs, p.For(az.Identifier))
	}
	if len(subs) == 0 {
		return acme.Malformed("order expired")
	}
	return acme.Compound(subs, "authorizations failed for %d identifiers", len(subs))
}

// Authorization returns one of the account's authorizations.
func (a *Authority) Authorization(ctx context.Context, c *Caller, id string) (*acme.Authorization, error) {
	az, err := a.loadAuthz(ctx, c, id)
	if err != nil {
		return nil, notFound(err, "authorization")
	}
	if az.AccountID != c.Account.ID {
		return nil, acme.Unauthorized("authorization belongs to another account")
	}
	return a.authzView(az), nil
}

// authzView is a copy of az with its status derived, which a client may
// see; az itself stays as stored.
func (a *Authority) authzView(az *acme.Authorization) *acme.Authorization {
	v := *az
	v.Status = acme.AuthzStatus(az, a.now())
	return &v
}

// DeactivateAuthorization is §7.5.2.
func (a *Authority) DeactivateAuthorization(ctx context.Context, acct *acme.Account, id string) (*acme.Authorization, error) {
	az, err := a.cfg.Store.UpdateAuthorization(ctx, id, func(az *acme.Authorization) error {
		if az.AccountID != acct.ID {
			return acme.Unauthorized("authorization belongs to another account")
		}
		return acme.DeactivateAuthz(az, a.now())
	})
	if err != nil {
		return nil, notFound(err, "authorization")
	}
	a.audit(ctx, "authorization.deactivate", "account", acct.ID, "authz", id, "identifier", az.Identifier.Value)
	return az, nil
}
