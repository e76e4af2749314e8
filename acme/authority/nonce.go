package authority

import (
	"context"
	"errors"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// NewNonce issues a fresh anti-replay nonce (RFC 8555 §7.2).
func (a *Authority) NewNonce(ctx context.Context) (string, error) {
	n, err := a.randomID(16)
	if err != nil {
		return "", err
	}
	if err := a.cfg.Store.PutNonce(ctx, n, a.now().Add(a.cfg.NonceLifetime)); err != nil {
		return "", err
	}
	return n, nil
}

// ConsumeNonce accepts a nonce once (§6.5) and returns the fresh nonce the
// response carries, issued in the same store round trip; the fresh nonce
// is returned with a badNonce problem too.
func (a *Authority) ConsumeNonce(ctx context.Context, nonce string) (string, error) {
	next, err := a.randomID(16)
	if err != nil {
		return "", err
	}
	ok, err := a.cfg.Store.ConsumeNonce(ctx, nonce, next, a.now().Add(a.cfg.NonceLifetime))
	switch {
	case err != nil:
		return "", err
	case nonce == "":
		return next, acme.BadNonce("JWS has no nonce")
	case !ok:
		return next, acme.BadNonce("nonce %q is unknown, used or expired", nonce)
	}
	return next, nil
}

// ConsumeNonceForAccount is ConsumeNonce, Account and the read of the
// resource look names, for a request signed with kid: one store round trip
// for everything the request reads first. The account error comes first; a
// badNonce is returned with the Caller, so the caller can still check the
// signature before answering it.
func (a *Authority) ConsumeNonceForAccount(ctx context.Context, nonce, accountID string, look Lookup) (string, *Caller, error) {
	next, err := a.randomID(16)
	if err != nil {
		return "", nil, err
	}
	found, err := a.cfg.Store.ConsumeNonceForAccount(ctx, nonce, next, a.now().Add(a.cfg.NonceLifetime), accountID, look)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return next, nil, acme.AccountDoesNotExist("account %q does not exist", accountID)
	case err != nil:
		return "", nil, err
	}
	c := &Caller{Account: found.Account, found: found}
	switch {
	case nonce == "":
		return next, c, acme.BadNonce("JWS has no nonce")
	case !found.NonceOK:
		return next, c, acme.BadNonce("nonce %q is unknown, used or expired", nonce)
	}
	return next, c, nil
}
