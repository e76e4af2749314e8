package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// Rotation itself (authority.Issuers.RotateIssuer): the new intermediate
// made or installed as the backend keeps keys, recorded in the store's
// issuer set, and applied to this replica at once.

// RotateIssuer: authority.Issuers. It runs on the replica the operator
// asked; the others follow within issuerPoll.
func (m *issuers) RotateIssuer(ctx context.Context, spec authority.RotateSpec, by authority.Operator) (*authority.IssuerInfo, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", authority.ErrBadRequest, fmt.Sprintf(format, args...))
	}
	switch m.c.CABackend {
	case backendFile, backendPKCS11:
	case "vault":
		return nil, bad("--ca-backend vault: Vault is the CA of record; rotate the intermediate in Vault")
	default:
		return nil, bad("--ca-backend %s: acmed does not rotate this backend's intermediate", m.c.CABackend)
	}
	if len(spec.KeyPEM) > 0 && len(spec.CertPEM) == 0 {
		return nil, bad("--key: needs --cert (the intermediate signed for it)")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next, stored, key, err := m.newIssuer(spec, bad)
	if err != nil {
		return nil, err
	}
	if err := next.CheckNew(); err != nil {
		key.discard()
		return nil, bad("%v", err)
	}
	now := m.now().UTC()
	stored.Name, stored.CertPEM, stored.State = next.Name(), next.IntermediatePEM(), storage.IssuerActive
	stored.Created, stored.Activated, stored.By = now, now, string(by)
	set, err := m.store.UpdateIssuers(ctx, func(s *storage.IssuerSet) error {
		for i := range s.Issuers {
			if s.Issuers[i].Name == stored.Name {
				return bad("intermediate %s is already one of this CA's issuers (%s)", stored.Name, s.Issuers[i].State)
			}
		}
		for i := range s.Issuers {
			if s.Issuers[i].State == storage.IssuerActive {
				s.Issuers[i].State, s.Issuers[i].Retired = storage.IssuerRetired, now
			}
		}
		s.Issuers = append(s.Issuers, stored)
		return nil
	})
	if err != nil {
		key.discard()
		return nil, err
	}
	m.loaded[next.Name()] = &loadedIssuer{l: next, close: key.close}
	if err := m.apply(ctx, set); err != nil {
		return nil, err
	}
	info := m.info(&set.Issuers[len(set.Issuers)-1], m.rot.Set())
	return &info, nil
}

// newKey is a rotation's key: close releases it once the issuer is
// loaded, discard undoes it when the rotation fails (a key generated in a
// token is deleted).
type newKey struct{ close, discard func() }

// newIssuer makes or installs the new intermediate as the backend keeps
// keys, and what the store records of its key.
func (m *issuers) newIssuer(spec authority.RotateSpec, bad func(string, ...any) error) (*ca.Local, storage.Issuer, newKey, error) {
	var stored storage.Issuer
	none := newKey{close: func() {}, discard: func() {}}
	if m.c.CABackend == backendPKCS11 {
		if len(spec.KeyPEM) > 0 {
			return nil, stored, none, bad("--key: not with --ca-backend pkcs11 (the key is in the token: give its --key-label)")
		}
		label := spec.KeyLabel
		var signer *ca.TokenSigner
		var err error
		if len(spec.CertPEM) > 0 {
			if label == "" {
				return nil, stored, none, bad("--cert with --ca-backend pkcs11: give the token label of its key with --key-label")
			}
			cfg := m.c.PKCS11
			cfg.KeyLabel = label
			signer, err = ca.OpenPKCS11(cfg)
		} else {
			if label == "" {
				label = m.nextLabel()
			}
			signer, err = ca.NewPKCS11Key(m.c.PKCS11, label)
		}
		if err != nil {
			return nil, stored, none, bad("%v", err)
		}
		key := newKey{close: func() { _ = signer.Close() }}
		key.discard = key.close
		if len(spec.CertPEM) == 0 {
			key.discard = func() {
				if err := signer.Delete(); err != nil {
					m.log.Error("rotation failed, and deleting its new key from the token failed too", "label", label, "err", err)
				}
			}
		}
		l, err := m.certFor(spec.CertPEM, signer, bad)
		if err != nil {
			key.discard()
			return nil, stored, none, err
		}
		stored.KeyLabel = label
		return l, stored, key, nil
	}
	if spec.KeyLabel != "" {
		return nil, stored, none, bad("--key-label: only with --ca-backend pkcs11")
	}
	var key crypto.Signer
	if len(spec.CertPEM) > 0 {
		if len(spec.KeyPEM) == 0 {
			return nil, stored, none, bad("--cert: needs --key (the intermediate's private key)")
		}
		k, err := ca.ParseKeyPEM(spec.KeyPEM, "--key")
		if err != nil {
			return nil, stored, none, bad("%v", strings.TrimPrefix(err.Error(), "ca: "))
		}
		key = k
	} else {
		k, err := newFileKey()
		if err != nil {
			return nil, stored, none, err
		}
		key = k
	}
	l, err := m.certFor(spec.CertPEM, key, bad)
	if err != nil {
		return nil, stored, none, err
	}
	kek, err := ca.KEK(m.c.Data)
	if err != nil {
		return nil, stored, none, err
	}
	if stored.WrappedKey, err = ca.WrapKey(kek, l.Name(), key); err != nil {
		return nil, stored, none, err
	}
	return l, stored, none, nil
}

// certFor is the new issuer: certPEM with key, or else a new
// intermediate for key signed with --data's root.key.
func (m *issuers) certFor(certPEM []byte, key crypto.Signer, bad func(string, ...any) error) (*ca.Local, error) {
	if len(certPEM) == 0 {
		var err error
		if certPEM, err = m.signNew(key); errors.Is(err, ca.ErrNoRootKey) {
			rootKey := filepath.Join(m.c.Data, ca.RootKeyFile)
			if m.c.CABackend == backendPKCS11 {
				return nil, bad("no root key to sign with (no %s, no --pkcs11-root-key-label): install an intermediate signed elsewhere with --cert FILE --key-label L", rootKey)
			}
			return nil, bad("no root key to sign with (%s is absent): install an intermediate signed elsewhere with --cert FILE --key FILE", rootKey)
		}
		if err != nil {
			return nil, bad("%v", strings.TrimPrefix(err.Error(), "ca: "))
		}
	}
	l, err := m.original.WithIntermediate(certPEM, key)
	if err != nil {
		return nil, bad("--cert: %v", strings.TrimPrefix(err.Error(), "ca: "))
	}
	return l, nil
}

// signNew signs a new intermediate for key with the root's key: in the
// token (--pkcs11-root-key-label, as init put it there) or root.key in
// --data.
func (m *issuers) signNew(key crypto.Signer) ([]byte, error) {
	if m.c.CABackend != backendPKCS11 || m.c.PKCS11.RootKeyLabel == "" {
		return m.original.NewIntermediate(m.c.Data, key)
	}
	cfg := m.c.PKCS11
	cfg.KeyLabel = cfg.RootKeyLabel
	root, err := ca.OpenPKCS11(cfg)
	if err != nil {
		return nil, fmt.Errorf("--pkcs11-root-key-label %q: %w", cfg.RootKeyLabel, err)
	}
	defer root.Close()
	return m.original.NewIntermediateWith(root, fmt.Sprintf("--pkcs11-root-key-label %q", cfg.RootKeyLabel), key)
}

// nextLabel is a token label for a rotation's key: --pkcs11-key-label
// and the issuer's number in the set.
func (m *issuers) nextLabel() string {
	n := 2
	if set := m.set.Load(); set != nil {
		n = len(set.Issuers) + 1
	}
	return m.c.PKCS11.KeyLabel + "-" + strconv.Itoa(n)
}

// newFileKey is a rotation's new key with the file backend: P-256, as
// init makes the first.
func newFileKey() (crypto.Signer, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}
