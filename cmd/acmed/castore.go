package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// caBackend is what serve needs of a CA: *ca.Local (the file and pkcs11
// backends) or *ca.Vault.
type caBackend interface {
	authority.Signer
	Root() *x509.Certificate
	Intermediate() *x509.Certificate
	RootPEM() []byte
	ServerCertificate(hosts []string) (tls.Certificate, error)
}

// loadCA loads the CA from --data, creating it first only for a store of
// this process's own: replicas sharing a Redis store must share one CA,
// which `acmed init` makes once and operators copy, so a replica that
// created its own would issue chains no client trusts.
func loadCA(c config, log *slog.Logger) (caBackend, func(), error) {
	switch c.CABackend {
	case backendPKCS11:
		return loadPKCS11CA(c)
	case backendVault:
		v, err := loadVaultCA(c)
		return v, func() {}, err
	}
	l, err := loadFileCA(c, log)
	return l, func() {}, err
}

func loadFileCA(c config, log *slog.Logger) (*ca.Local, error) {
	if !ca.Exists(c.Data) {
		if isRedisURL(c.Store) {
			return nil, fmt.Errorf("--data %s holds no CA, and serve never creates one for a Redis store: run \"acmed init --data %s\" once, then give every replica a copy of %s", c.Data, c.Data, c.Data)
		}
		if path := embeddedPath(c); fileExists(path) {
			return nil, fmt.Errorf("--data %s holds no CA (no %s) but its store %s exists: restore the CA files from a backup; a new CA would not be the one the store's certificates chain to", c.Data, ca.RootCertFile, path)
		}
		switch err := ca.Init(c.Data, ca.Config{}); {
		case err == nil:
			log.Info("created CA", "dir", c.Data)
		case !errors.Is(err, ca.ErrExists):
			return nil, err
		}
	}
	return ca.Load(c.Data, caLoadConfig())
}

// caLoadConfig loads --data's CA even if its intermediate expired: after a
// rotation it is no longer the one that signs (startIssuers checks the
// active one).
func caLoadConfig() ca.Config { return ca.Config{AllowExpired: true} }

// claimCA records the CA in the store on the first start, and refuses to
// serve a store another CA claimed (DESIGN.md decision 3).
func claimCA(ctx context.Context, c config, store storage.CAs, l caBackend, log *slog.Logger) error {
	if v, ok := l.(*ca.Vault); ok {
		return claimVaultCA(ctx, c, store, v, log)
	}
	ours := storage.CAIdentity{Root: fingerprint(l.Root()), Intermediate: fingerprint(l.Intermediate())}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stored, err := store.ClaimCA(ctx, ours)
	if err != nil {
		if isRedisURL(c.Store) {
			return fmt.Errorf("--store %s: recording the CA: %w", redactURL(c.Store), err)
		}
		return err // the embedded store's errors name its file
	}
	what, theirs, mine, file := "root", stored.Root, ours.Root, ca.RootCertFile
	if stored.Root == ours.Root {
		if stored.Intermediate == ours.Intermediate {
			return nil
		}
		what, theirs, mine, file = "intermediate", stored.Intermediate, ours.Intermediate, ca.IntermediateCertFile
	}
	fix := "start it with the --data it was first used with"
	if isRedisURL(c.Store) {
		fix = "every replica needs a copy of the same --data, made once by acmed init"
	}
	return fmt.Errorf("store %s belongs to another CA: the store's %s certificate has SHA-256 fingerprint %s, --data %s has %s (%s); %s",
		storeName(c), what, colonHex(theirs), c.Data, colonHex(mine), filepath.Join(c.Data, file), fix)
}

func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// colonHex spells a fingerprint as openssl x509 -fingerprint -sha256 does,
// so an operator can compare it with the files at hand.
func colonHex(h string) string {
	var b strings.Builder
	for i := 0; i+2 <= len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToUpper(h[i : i+2]))
	}
	return b.String()
}

// embeddedPath is the embedded store's file for c (c.Store not being a
// Redis URL).
func embeddedPath(c config) string {
	if c.Store == "" {
		return filepath.Join(c.Data, "acmed.db")
	}
	return strings.TrimPrefix(c.Store, "file:")
}

func storeName(c config) string {
	if isRedisURL(c.Store) {
		return redactURL(c.Store)
	}
	return embeddedPath(c)
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
