//go:build cgo

package ca

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
	_, err = newTokenKey(ctx, cfg)
	_ = ctx.Close()
	if err != nil {
		return nil, err
	}
	return OpenPKCS11(cfg)
}
