package authority

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// KeyInUseError reports that a key belongs to another account; the API
// answers 409 with that account's URL (§7.3.5).
type KeyInUseError struct{ AccountID string }

func (e *KeyInUseError) Error() string { return "key is in use by account " + e.AccountID }

// NewAccountRequest is the payload of newAccount (§7.3).
type NewAccountRequest struct {
	Contact            []string
	TermsAgreed        bool
	OnlyReturnExisting bool
	// ClientIP is the address the request came from, for the
	// new-accounts-per-ip limit; "" is not limited.
	ClientIP string
	// EAB is the request's externalAccountBinding, as sent (nil: none),
	// and URL the new-account URL it must name (§7.3.4).
	EAB json.RawMessage
	URL string
}

// NewAccount creates an account for key, or returns the existing one
// (created false), as §7.3.1 asks of a repeated registration.
func (a *Authority) NewAccount(ctx context.Context, key *jose.JSONWebKey, req NewAccountRequest) (*acme.Account, bool, error) {
	tp, err := acme.Thumbprint(key)
	if err != nil {
		return nil, false, acme.BadPublicKey("%v", err)
	}
	existing, err := a.cfg.Store.AccountByKey(ctx, tp)
	switch {
	case err == nil:
		// §7.3.6: a deactivated account's key authorizes nothing more,
		// finding the account again included.
		if existing.Status != acme.StatusValid {
			return nil, false, acme.Unauthorized("account is %s", existing.Status)
		}
		if err := a.rebind(ctx, key, existing, req); err != nil {
			return nil, false, err
		}
		return existing, false, nil
	case !errors.Is(err, storage.ErrNotFound):
		return nil, false, err
	case req.OnlyReturnExisting:
		return nil, false, acme.AccountDoesNotExist("no account exists with this key")
	}
	if a.cfg.TermsOfService != "" && !req.TermsAgreed {
		return nil, false, acme.Malformed("you must agree to the terms of service at %s", a.cfg.TermsOfService)
	}
	// Only a new account's key: an account whose key was blocked since
	// it registered is still found above (checking every request's key
	// would cost every request a read), and can deactivate itself.
	if err := a.checkAccountKeyNotBlocked(ctx, key); err != nil {
		return nil, false, err
	}
	if p := acme.CheckContacts(req.Contact); p != nil {
		return nil, false, p
	}
	eab, _, err := a.verifyBinding(ctx, key, req)
	if err != nil {
		return nil, false, err
	}
	if eab != nil {
		if p := eab.Bindable(a.now()); p != nil {
			return nil, false, p
		}
	}
	if err := a.limit(ctx, a.newAccountLimit(req.ClientIP)...); err != nil {
		return nil, false, err
	}
	keyJSON, err := key.MarshalJSON()
	if err != nil {
		return nil, false, acme.BadPublicKey("%v", err)
	}
	id, err := a.randomID(12)
	if err != nil {
		return nil, false, err
	}
	acct := &acme.Account{
		ID: id, Status: acme.StatusValid, Contact: req.Contact, Key: keyJSON,
		KeyThumbprint: tp, TermsAgreed: req.TermsAgreed, CreatedAt: a.now(),
	}
	if eab != nil {
		// The key records the account before the account exists, so a
		// single-use key cannot bind two accounts however they race.
		acct.EABKID = eab.KID
		if err := a.bind(ctx, eab, id); err != nil {
			return nil, false, err
		}
	}
	if err := a.cfg.Store.CreateAccount(ctx, acct); err != nil {
		if eab != nil {
			a.unbind(ctx, eab.KID, id)
		}
		if errors.Is(err, storage.ErrConflict) {
			// Another request registered the same key first: answer as a repeat.
			existing, err := a.cfg.Store.AccountByKey(ctx, tp)
			return existing, false, vanished(err)
		}
		return nil, false, err
	}
	if eab != nil {
		a.audit(ctx, "account.create", "account", id, "contact", req.Contact, "key", tp, "eab_kid", eab.KID, "eab_name", eab.Name)
	} else {
		a.audit(ctx, "account.create", "account", id, "contact", req.Contact, "key", tp)
	}
	return acct, true, nil
}

// rebind answers a new-account request for a key that has an account. A
// binding it carries (cert-manager re-sends its binding every time) is
// verified like a new one, and must name the key the account is bound to:
// the client then gets its account back. Nothing is written.
func (a *Authority) rebind(ctx context.Context, key *jose.JSONWebKey, acct *acme.Account, req NewAccountRequest) error {
	if a.cfg.EAB == EABOff || len(req.EAB) == 0 || string(req.EAB) == "null" {
		return nil
	}
	k, _, err := a.verifyBinding(ctx, key, req)
	if err != nil {
		return err
	}
	if acct.EABKID != k.KID {
		return acme.Unauthorized("the account is not bound to external account binding key %q", k.KID)
	}
	if k.Revoked {
		return acme.Unauthorized("external account binding key %q is revoked", k.KID)
	}
	return nil
}

// AccountByKey finds the account of a key, for requests signed with "jwk".
func (a *Authority) AccountByKey(ctx context.Context, key *jose.JSONWebKey) (*acme.Account, error) {
	tp, err := acme.Thumbprint(key)
	if err != nil {
		return nil, acme.BadPublicKey("%v", err)
	}
	acct, err := a.cfg.Store.AccountByKey(ctx, tp)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, acme.AccountDoesNotExist("no account exists with this key")
	}
	return acct, err
}

// AccountUpdate is the payload of an account update (§7.3.2, §7.3.6).
type AccountUpdate struct {
	Contact    *[]string
	Deactivate bool
}

// UpdateAccount changes contacts or deactivates the account.
func (a *Authority) UpdateAccount(ctx context.Context, acct *acme.Account, u AccountUpdate) (*acme.Account, error) {
	if u.Contact != nil {
		if p := acme.CheckContacts(*u.Contact); p != nil {
			return nil, p
		}
	}
	updated, err := a.cfg.Store.UpdateAccount(ctx, acct.ID, func(cur *acme.Account) error {
		if cur.Status != acme.StatusValid {
			return acme.Unauthorized("account is %s", cur.Status)
		}
		if u.Contact != nil {
			cur.Contact = *u.Contact
		}
		if u.Deactivate {
			return acme.DeactivateAccount(cur)
		}
		return nil
	})
	if err != nil {
		return nil, notFound(err, "account")
	}
	event := "account.update"
	if u.Deactivate {
		event = "account.deactivate"
	}
	a.audit(ctx, event, "account", acct.ID, "contact", updated.Contact)
	return updated, nil
}

// ChangeKey rolls the account over to newKey once the caller has checked the
// inner JWS of §7.3.5; oldKey must be the account's current key.
func (a *Authority) ChangeKey(ctx context.Context, acct *acme.Account, oldKey, newKey *jose.JSONWebKey) (*acme.Account, error) {
	oldTP, err := acme.Thumbprint(oldKey)
	if err != nil {
		return nil, acme.Malformed("oldKey: %v", err)
	}
	newTP, err := acme.Thumbprint(newKey)
	if err != nil {
		return nil, acme.BadPublicKey("new key: %v", err)
	}
	newJSON, err := newKey.MarshalJSON()
	if err != nil {
		return nil, acme.BadPublicKey("new key: %v", err)
	}
	if err := a.checkAccountKeyNotBlocked(ctx, newKey); err != nil {
		return nil, err
	}
	updated, err := a.cfg.Store.UpdateAccount(ctx, acct.ID, func(cur *acme.Account) error {
		if cur.KeyThumbprint != oldTP {
			return acme.Malformed("oldKey is not the account's current key")
		}
		// §7.3.5: the new key must be new. Rolling over to the key in
		// use would only log a key change that did not happen.
		if newTP == cur.KeyThumbprint {
			return acme.Malformed("the new key is the account's current key")
		}
		cur.Key, cur.KeyThumbprint = newJSON, newTP
		return nil
	})
	if errors.Is(err, storage.ErrConflict) {
		holder, lerr := a.cfg.Store.AccountByKey(ctx, newTP)
		if lerr != nil {
			return nil, fmt.Errorf("key change conflict: %w", vanished(lerr))
		}
		return nil, &KeyInUseError{AccountID: holder.ID}
	}
	if err != nil {
		return nil, notFound(err, "account")
	}
	a.audit(ctx, "account.keychange", "account", acct.ID, "old_key", oldTP, "new_key", newTP)
	return updated, nil
}

// AccountOrders lists an account's orders, a page at a time (§7.1.2.1).
func (a *Authority) AccountOrders(ctx context.Context, acct *acme.Account, cursor string) ([]string, string, error) {
	ids, next, err := a.cfg.Store.AccountOrders(ctx, acct.ID, cursor, ordersPageSize)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, "", acme.Malformed("invalid cursor")
	}
	return ids, next, err
}

const ordersPageSize = 100
