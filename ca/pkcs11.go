//go:build cgo

package ca

// The PKCS#11 backend goes through github.com/ThalesGroup/crypto11: it owns
// the module loading, the session pool, login, object lookup by label and a
// crypto.Signer over a token key, which is what acmed needs and nothing it
// should re-implement over the raw PKCS#11 calls.

import (
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"sync"

	"github.com/ThalesGroup/crypto11"
)

// TokenSigner is a crypto.Signer over a key pair in a PKCS#11 token. A
// failed signature (a closed session, a logged-out token) closes the
// crypto11 context and returns an error wrapping ErrUnavailable; the next
// Sign opens a fresh one. It is safe for concurrent use.
type TokenSigner struct {
	cfg PKCS11Config
	pin string
	pub crypto.PublicKey // fixed at open: a re-opened key must match it

	mu  sync.Mutex
	ctx *crypto11.Context // nil while closed
	key crypto11.Signer
}

// OpenPKCS11 loads the module, logs in to the token and finds the key pair
// labelled cfg.KeyLabel. Each failure is one line naming the flag at fault.
func OpenPKCS11(cfg PKCS11Config) (*TokenSigner, error) {
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return nil, err
	}
	s := &TokenSigner{cfg: cfg, pin: pin}
	ctx, key, err := s.open()
	if err != nil {
		return nil, err
	}
	s.ctx, s.key, s.pub = ctx, key, key.Public()
	return s, nil
}

// configure opens a crypto11 context on the token.
func configure(cfg PKCS11Config, pin string) (*crypto11.Context, error) {
	ctx, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: pin})
	if err != nil {
		return nil, fmt.Errorf("ca: pkcs11: --pkcs11-module %s, --pkcs11-token-label %q, --pkcs11-pin-file %s: %w",
			cfg.Module, cfg.TokenLabel, cfg.PINFile, err)
	}
	return ctx, nil
}

func (s *TokenSigner) open() (*crypto11.Context, crypto11.Signer, error) {
	ctx, err := configure(s.cfg, s.pin)
	if err != nil {
		return nil, nil, err
	}
	keys, err := ctx.FindKeyPairs(nil, []byte(s.cfg.KeyLabel))
	switch {
	case err != nil:
		err = fmt.Errorf("ca: pkcs11: --pkcs11-key-label %q on token %q: %w", s.cfg.KeyLabel, s.cfg.TokenLabel, err)
	case len(keys) == 0:
		err = fmt.Errorf("ca: pkcs11: --pkcs11-key-label %q: no key pair with this label on token %q", s.cfg.KeyLabel, s.cfg.TokenLabel)
	case len(keys) > 1:
		err = fmt.Errorf("ca: pkcs11: --pkcs11-key-label %q: token %q holds %d key pairs with this label; acmed cannot tell which signs", s.cfg.KeyLabel, s.cfg.TokenLabel, len(keys))
	}
	if err != nil {
		_ = ctx.Close()
		return nil, nil, err
	}
	key := keys[0]
	if s.pub != nil {
		if p, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(s.pub) {
			_ = ctx.Close()
			return nil, nil, fmt.Errorf("ca: pkcs11: --pkcs11-key-label %q on token %q is no longer the key acmed started with", s.cfg.KeyLabel, s.cfg.TokenLabel)
		}
	}
	return ctx, key, nil
}

// Public returns the key pair's public key, as found at open.
func (s *TokenSigner) Public() crypto.PublicKey { return s.pub }

// Sign signs digest in the token, re-opening the context first if an
// earlier failure closed it.
func (s *TokenSigner) Sign(r io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	s.mu.Lock()
	if s.key == nil {
		ctx, key, err := s.open()
		if err != nil {
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		s.ctx, s.key = ctx, key
	}
	key := s.key
	s.mu.Unlock()

	sig, err := key.Sign(r, digest, opts)
	if err != nil {
		s.drop(key)
		return nil, fmt.Errorf("%w: pkcs11 token %q, key %q: %w", ErrUnavailable, s.cfg.TokenLabel, s.cfg.KeyLabel, err)
	}
	return sig, nil
}

// drop closes the context key came from, unless a concurrent failure has
// already replaced it.
func (s *TokenSigner) drop(key crypto11.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != key {
		return
	}
	if s.ctx != nil {
		_ = s.ctx.Close()
	}
	s.ctx, s.key = nil, nil
}

// Close logs out and releases the module.
func (s *TokenSigner) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.ctx != nil {
		err = s.ctx.Close()
	}
	s.ctx, s.key = nil, nil
	return err
}

// InitPKCS11 is Init with the intermediate's key generated inside the token
// (P-256, labelled cfg.KeyLabel, sensitive and not extractable): dir gets
// root.pem, root.key and intermediate.pem, never an intermediate key. With
// cfg.RootKeyLabel the root's key (P-384, as Init's) is generated in the
// token too, with the same attributes, and no root.key is written. A label
// already on the token is refused, so a second init cannot leave two keys
// of one name; if writing dir fails the new keys are deleted.
func InitPKCS11(dir string, c Config, cfg PKCS11Config) error {
	if Exists(dir) {
		return fmt.Errorf("%w: %s is present", ErrExists, dir+"/"+RootCertFile)
	}
	if cfg.RootKeyLabel != "" && cfg.RootKeyLabel == cfg.KeyLabel {
		return fmt.Errorf("ca: pkcs11: --pkcs11-root-key-label %q: the same label as --pkcs11-key-label; the root and the intermediate need a key each", cfg.RootKeyLabel)
	}
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return err
	}
	ctx, err := configure(cfg, pin)
	if err != nil {
		return err
	}
	defer ctx.Close()
	var made []tokenKey // deleted again if init fails
	var rootKey crypto.Signer
	if cfg.RootKeyLabel != "" {
		k, err := newTokenKey(ctx, cfg, "--pkcs11-root-key-label", cfg.RootKeyLabel, elliptic.P384())
		if err != nil {
			return err
		}
		rootKey, made = k, append(made, tokenKey{k, cfg.RootKeyLabel})
	}
	key, err := newTokenKey(ctx, cfg, "--pkcs11-key-label", cfg.KeyLabel, elliptic.P256())
	if err == nil {
		made = append(made, tokenKey{key, cfg.KeyLabel})
		err = initWith(dir, c, rootKey, key)
	}
	if err != nil {
		return deleteTokenKeys(err, made)
	}
	return nil
}

// tokenKey is a key pair init generated, with its label for messages.
type tokenKey struct {
	key   crypto11.Signer
	label string
}

// deleteTokenKeys undoes a failed init's key generation, adding to err
// any key it could not delete.
func deleteTokenKeys(err error, keys []tokenKey) error {
	for _, k := range keys {
		if derr := k.key.Delete(); derr != nil {
			err = fmt.Errorf("%w (and deleting the new key %q from the token: %w)", err, k.label, derr)
		}
	}
	return err
}

// newTokenKey generates a key pair on the token under label (given by
// flag), refusing a label already there so that no token holds two keys
// of one name.
func newTokenKey(ctx *crypto11.Context, cfg PKCS11Config, flag, label string, curve elliptic.Curve) (crypto11.Signer, error) {
	if ks, err := ctx.FindKeyPairs(nil, []byte(label)); err != nil {
		return nil, fmt.Errorf("ca: pkcs11: %s %q on token %q: %w", flag, label, cfg.TokenLabel, err)
	} else if len(ks) > 0 {
		return nil, fmt.Errorf("ca: pkcs11: %s %q: token %q already holds a key pair with this label; choose another label or delete it", flag, label, cfg.TokenLabel)
	}
	key, err := generateTokenKey(ctx, label, curve)
	if err != nil {
		return nil, fmt.Errorf("ca: pkcs11: generate the key %s %q on token %q: %w", flag, label, cfg.TokenLabel, err)
	}
	return key, nil
}

// PKCS11IntermediateCSR is IntermediateCSR with the key generated inside
// the token (as InitPKCS11 makes it): dir gets nothing, csrPath the CSR.
// If the CSR cannot be made or written the new key is deleted.
func PKCS11IntermediateCSR(dir string, c Config, cfg PKCS11Config, csrPath string) error {
	if err := checkNoCA(dir); err != nil {
		return err
	}
	pin, err := readPIN(cfg.PINFile)
	if err != nil {
		return err
	}
	ctx, err := configure(cfg, pin)
	if err != nil {
		return err
	}
	defer ctx.Close()
	key, err := newTokenKey(ctx, cfg, "--pkcs11-key-label", cfg.KeyLabel, elliptic.P256())
	if err != nil {
		return err
	}
	csr, err := newIntermediateCSR(c, key)
	if err == nil {
		err = writeCSR(csrPath, csr)
	}
	if err != nil {
		return deleteTokenKeys(err, []tokenKey{{key, cfg.KeyLabel}})
	}
	return nil
}

// generateTokenKey makes a key pair on curve on the token. crypto11's defaults
// already mark the private key sensitive and not extractable; they are
// set here anyway, so the guarantee does not hang on a library default.
func generateTokenKey(ctx *crypto11.Context, label string, curve elliptic.Curve) (crypto11.Signer, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, err
	}
	public, err := crypto11.NewAttributeSetWithIDAndLabel(id, []byte(label))
	if err != nil {
		return nil, err
	}
	private := public.Copy()
	for _, a := range []struct {
		t crypto11.AttributeType
		v bool
	}{
		{crypto11.CkaToken, true},
		{crypto11.CkaSign, true},
		{crypto11.CkaSensitive, true},
		{crypto11.CkaExtractable, false},
		{crypto11.CkaPrivate, true},
	} {
		if err := private.Set(a.t, a.v); err != nil {
			return nil, err
		}
	}
	key, err := ctx.GenerateECDSAKeyPairWithAttributes(public, private, curve)
	if err != nil {
		return nil, err
	}
	return key, nil
}
