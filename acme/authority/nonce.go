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

// ConsumeNonce accepts a nonce once (§6.5).
func (a *Authority) ConsumeNonce(ctx context.Context, nonce string) error {
	if nonce == "" {
		return acme.BadNonce("JWS has no nonce")
	}
	ok, err := a.cfg.Store.ConsumeNonce(ctx, nonce)
	if err != nil {
		return err
	}
	if !ok {
		return acme.BadNonce("nonce %q is unknown, used or expired", nonce)
	}
	return nil
}
