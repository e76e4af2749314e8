package ca

import (
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
)

// A rotated intermediate's key is made on the one replica an operator
// asks; every other replica needs it too, without a restart and without a
// copy of a new file. It travels through the store, sealed (AES-256-GCM)
// under a key-encryption key each replica derives from what it already
// holds: the --data intermediate's key, which every replica of a file
// backend has (they share a copy of --data). The store alone never
// reveals it.

// wrapVersion is the first byte of a wrapped key.
const wrapVersion = 1

// kekInfo binds the derived key to this one use (HKDF's info).
const kekInfo = "acmed issuer key wrapping v1"

// KEK derives the key-encryption key of dir's CA from its intermediate.key
// (its PKCS#8 encoding, so the file's PEM spelling does not matter).
func KEK(dir string) ([]byte, error) {
	key, err := readKey(filepath.Join(dir, IntermediateKeyFile))
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: encode %s: %w", filepath.Join(dir, IntermediateKeyFile), err)
	}
	return hkdf.Key(sha256.New, der, nil, kekInfo, 32)
}

// WrapKey seals key under kek for the issuer named name (its CRL name):
// the name is the additional data, so a wrapped key moved to another
// issuer's entry does not open.
func WrapKey(kek []byte, name string, key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: wrap key: %w", err)
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(der)+aead.Overhead())
	out[0] = wrapVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return aead.Seal(out, out[1:], der, wrapAD(name)), nil
}

// UnwrapKey opens what WrapKey sealed for name.
func UnwrapKey(kek []byte, name string, wrapped []byte) (crypto.Signer, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	if len(wrapped) < 1+aead.NonceSize() || wrapped[0] != wrapVersion {
		return nil, errors.New("ca: wrapped key: not one this acmed wrote")
	}
	nonce, sealed := wrapped[1:1+aead.NonceSize()], wrapped[1+aead.NonceSize():]
	der, err := aead.Open(nil, nonce, sealed, wrapAD(name))
	if err != nil {
		return nil, fmt.Errorf("ca: wrapped key of issuer %s does not open with this replica's --data intermediate.key: %w", name, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("ca: wrapped key of issuer %s: %w", name, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: wrapped key of issuer %s: %T cannot sign", name, k)
	}
	return s, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != 32 {
		return nil, errors.New("ca: key-encryption key is not 32 bytes")
	}
	b, err := aes.NewCipher(kek)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func wrapAD(name string) []byte { return []byte("acmed issuer " + name) }
