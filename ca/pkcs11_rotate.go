//go:build cgo

package ca

import "crypto/elliptic"

// NewPKCS11Key generates a rotation's key on the token of cfg under
// label (refused if the label is taken), as InitPKCS11 generates the
// first, and opens it for signing.
func NewPKCS11Key(cfg PKCS11Config, label string) (*TokenSigner, error) {
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return nil, err
	}
	ctx, err := configure(cfg, pin)
	if err != nil {
		return nil, err
	}
	cfg.KeyLabel = label
	_, err = newTokenKey(ctx, cfg, "--key-label", label, elliptic.P256())
	_ = ctx.Close()
	if err != nil {
		return nil, err
	}
	return OpenPKCS11(cfg)
}

// Delete removes the key pair from the token and closes s: a rotation
// that failed after NewPKCS11Key generated it leaves no orphan key.
func (s *TokenSigner) Delete() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key == nil {
		ctx, key, err := s.open()
		if err != nil {
			return err
		}
		s.ctx, s.key = ctx, key
	}
	err := s.key.Delete()
	if s.ctx != nil {
		_ = s.ctx.Close()
	}
	s.ctx, s.key = nil, nil
	return err
}
