//go:build !cgo

package ca

import (
	"crypto"
	"errors"
	"io"
)

// errNoCgo: PKCS#11 loads a C library, which a build without cgo cannot.
var errNoCgo = errors.New("ca: --ca-backend pkcs11 needs an acmed built with cgo (CGO_ENABLED=1)")

// TokenSigner is unavailable without cgo; see pkcs11.go.
type TokenSigner struct{}

// OpenPKCS11 fails: this build has no cgo.
func OpenPKCS11(PKCS11Config) (*TokenSigner, error) { return nil, errNoCgo }

// InitPKCS11 fails: this build has no cgo.
func InitPKCS11(string, Config, PKCS11Config) error { return errNoCgo }

// PKCS11IntermediateCSR fails: this build has no cgo.
func PKCS11IntermediateCSR(string, Config, PKCS11Config, string) error { return errNoCgo }

// Public is never reached: no TokenSigner exists without cgo.
func (*TokenSigner) Public() crypto.PublicKey { return nil }

// Sign is never reached: no TokenSigner exists without cgo.
func (*TokenSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errNoCgo
}

// Close does nothing.
func (*TokenSigner) Close() error { return nil }

// NewPKCS11Key fails: this build has no cgo.
func NewPKCS11Key(PKCS11Config, string) (*TokenSigner, error) { return nil, errNoCgo }

// Delete is never reached: no TokenSigner exists without cgo.
func (*TokenSigner) Delete() error { return errNoCgo }
