package authority

import (
	"context"

	"github.com/acmed/acmed/acme"
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
