package authority

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
	"github.com/acmed/acmed/acme/profile"
	"github.com/acmed/acmed/storage"
)

// EABMode is --eab: what new-account does with an external account
// binding (RFC 8555 §7.3.4).
type EABMode string

const (
	// EABOptional (the default): a binding that is present is verified,
	// and a bad one refused; an account may be opened without one.
	EABOptional EABMode = "optional"
	// EABRequired: every new account must carry a valid binding, and the
	// directory says so (meta.externalAccountRequired).
	EABRequired EABMode = "required"
	// EABOff: bindings are ignored, neither verified nor recorded, as
	// before acmed knew them; no account is bound to a key.
	EABOff EABMode = "off"
)

// ParseEABMode checks a --eab value.
func ParseEABMode(s string) (EABMode, error) {
	switch m := EABMode(s); m {
	case EABOptional, EABRequired, EABOff:
		return m, nil
	case "":
		return EABOptional, nil
	}
	return "", fmt.Errorf("--eab %q: want off, optional or required", s)
}

// EABRequired reports whether the directory must say
// externalAccountRequired.
func (a *Authority) EABRequired() bool { return a.cfg.EAB == EABRequired }

// verifyBinding checks a new-account request's binding and returns the key
// it names, or nil when there is none to check. It writes nothing.
func (a *Authority) verifyBinding(ctx context.Context, key *jose.JSONWebKey, req NewAccountRequest) (*acme.EABKey, *acme.EABBinding, error) {
	if a.cfg.EAB == EABOff {
		return nil, nil, nil
	}
	if len(req.EAB) == 0 || string(req.EAB) == "null" {
		if a.cfg.EAB == EABRequired {
			return nil, nil, acme.ExternalAccountRequired("this server requires an external account binding (RFC 8555 §7.3.4)")
		}
		return nil, nil, nil
	}
	b, err := acme.ParseEAB(req.EAB, key, req.URL)
	if err != nil {
		return nil, nil, err
	}
	k, err := a.cfg.Store.EABKey(ctx, b.KID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, acme.Unauthorized("external account binding key %q is unknown", b.KID)
	}
	if err != nil {
		return nil, nil, err
	}
	if err := b.Verify(k.HMAC); err != nil {
		return nil, nil, err
	}
	return k, b, nil
}

// bind records acct as bound to k, refusing a key that no longer takes new
// accounts (checked again in the compare-and-set, so that two accounts
// racing for a single-use key do not both win).
func (a *Authority) bind(ctx context.Context, k *acme.EABKey, accountID string) error {
	_, err := a.cfg.Store.UpdateEABKey(ctx, k.KID, func(cur *acme.EABKey) error {
		if p := cur.Bindable(a.now()); p != nil {
			return p
		}
		cur.Accounts = append(cur.Accounts, accountID)
		return nil
	})
	return err
}

// unbind undoes bind for an account that could not be created.
func (a *Authority) unbind(ctx context.Context, kid, accountID string) {
	_, err := a.cfg.Store.UpdateEABKey(context.WithoutCancel(ctx), kid, func(cur *acme.EABKey) error {
		cur.Accounts = slices.DeleteFunc(cur.Accounts, func(id string) bool { return id == accountID })
		return nil
	})
	if err != nil {
		a.log.WarnContext(ctx, "could not unbind an account that was not created from its EAB key", "kid", kid, "account", accountID, "err", err)
	}
}

// boundKey is the EAB key policy of an account's orders: the key's allow
// and prevalidated patterns (both empty for an unbound account), and its
// max validity. A revoked or missing key stops the account.
type boundKey struct {
	key          *acme.EABKey
	allow, preva policy.Patterns
}

func (b boundKey) patterns() []policy.Patterns {
	if b.key == nil {
		return nil
	}
	return []policy.Patterns{b.allow, b.preva}
}

// profile picks the profile of a new order that asked for name ("": none)
// within what the key allows.
func (b boundKey) profile(set *profile.Set, name string) (*profile.Profile, *acme.Problem) {
	if b.key == nil {
		return set.Choose(name, nil, "")
	}
	return set.Choose(name, b.key.Profiles, b.key.SPIFFEID)
}

// limit is the longest certificate lifetime the account may get under p:
// p's, or the key's --max-validity when that is shorter.
func (b boundKey) limit(p *profile.Profile) time.Duration {
	if b.key == nil {
		return p.MaxValidity
	}
	return p.Limit(b.key.MaxValidity)
}

// prevalidated reports whether the key vouches for id.
func (b boundKey) prevalidated(id acme.Identifier) bool {
	if b.key == nil || b.preva.Empty() {
		return false
	}
	base, wildcard := acme.SplitWildcard(id)
	return b.preva.Allows(base, wildcard)
}

func (a *Authority) accountKey(ctx context.Context, acct *acme.Account) (boundKey, error) {
	if acct.EABKID == "" {
		return boundKey{}, nil
	}
	k, err := a.cfg.Store.EABKey(ctx, acct.EABKID)
	if errors.Is(err, storage.ErrNotFound) {
		return boundKey{}, acme.Unauthorized("the account's external account binding key %q no longer exists", acct.EABKID)
	}
	if err != nil {
		return boundKey{}, err
	}
	if k.Revoked {
		return boundKey{}, acme.Unauthorized("the account's external account binding key %q is revoked", k.KID)
	}
	b := boundKey{key: k}
	// The patterns were checked when the key was created.
	if b.allow, err = policy.Parse(k.Allow); err != nil {
		return boundKey{}, fmt.Errorf("EAB key %q: %w", k.KID, err)
	}
	if b.preva, err = policy.Parse(k.Prevalidated); err != nil {
		return boundKey{}, fmt.Errorf("EAB key %q: %w", k.KID, err)
	}
	return b, nil
}

// prevalidatedAuthorization is an authorization created valid, with no
// challenge (issue 13 item 4): the account's EAB key vouches for its
// identifier, as the operator who made the key said with --prevalidated.
// It stays valid as long as a validated authorization would.
func (a *Authority) prevalidatedAuthorization(acct *acme.Account, id acme.Identifier, now time.Time) (*acme.Authorization, error) {
	authzID, err := a.accountScopedID(acct)
	if err != nil {
		return nil, err
	}
	base, wildcard := acme.SplitWildcard(id)
	return &acme.Authorization{ID: authzID, AccountID: acct.ID, Identifier: base, Wildcard: wildcard,
		Status: acme.StatusValid, Expires: now.Add(a.cfg.ValidAuthzLifetime)}, nil
}
