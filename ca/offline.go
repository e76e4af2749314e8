package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// The offline-root flow: the root's key never comes near acmed. Init's
// first step (IntermediateCSR) makes the intermediate's key and a CSR for
// it; the root's owner signs the CSR elsewhere; the second step
// (InstallIntermediate) checks the signed certificate against the key and
// the root and installs both certificates. Until then --data holds a key
// and no root.pem, so Exists is false and serve refuses to start.

// IntermediateCSR generates the intermediate's P-256 key as dir's
// intermediate.key (0600; dir is created 0700 if missing) and writes a PEM
// CSR for it to csrPath. A dir that already holds a CA gives an error
// wrapping ErrExists; one that holds a key from an earlier call is
// refused, so a second run cannot replace the key a pending CSR is for.
func IntermediateCSR(dir string, cfg Config, csrPath string) error {
	if err := checkNoCA(dir); err != nil {
		return err
	}
	keyPath := filepath.Join(dir, IntermediateKeyFile)
	if fileExists(keyPath) {
		return fmt.Errorf("ca: --data %s already holds %s from an earlier --intermediate-csr: install its signed certificate with --intermediate-cert, or remove it to start over", dir, IntermediateKeyFile)
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("ca: init %s: %w", dir, err)
	}
	if err := checkDirMode(dir); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), cfg.rand())
	if err != nil {
		return fmt.Errorf("ca: generate intermediate key: %w", err)
	}
	csr, err := newIntermediateCSR(cfg, key)
	if err != nil {
		return err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return err
	}
	if err := writeNew(keyPath, keyPEM, keyPerm); err != nil {
		return err
	}
	if err := writeCSR(csrPath, csr); err != nil {
		_ = os.Remove(keyPath)
		return err
	}
	syncDir(dir)
	return nil
}

// checkNoCA refuses a directory that already holds a CA.
func checkNoCA(dir string) error {
	rootPath := filepath.Join(dir, RootCertFile)
	if _, err := os.Lstat(rootPath); err == nil {
		return fmt.Errorf("%w: %s is present", ErrExists, rootPath)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("ca: init %s: %w", dir, err)
	}
	return nil
}

// newIntermediateCSR is a PEM CSR for key, named like the intermediates
// Init makes. It asks for nothing else: the root's owner decides the
// extensions, and InstallIntermediate checks the ones acmed needs.
func newIntermediateCSR(cfg Config, key crypto.Signer) ([]byte, error) {
	id, err := randomHex(cfg.rand(), 4)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(cfg.rand(), &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "acmed intermediate CA " + id},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("ca: create intermediate CSR: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// writeCSR writes the CSR to path, never over an existing file (it may
// be the CSR of a key still waiting for its certificate).
func writeCSR(path string, csr []byte) error {
	if err := writeNew(path, csr, certPerm); err != nil {
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("ca: --intermediate-csr %s already exists; remove it or name another file", path)
		}
		return fmt.Errorf("ca: --intermediate-csr: %w", err)
	}
	return nil
}

// InstallFiles names the PEM files InstallIntermediate reads.
type InstallFiles struct {
	Root         string // the external root, self-signed
	Intermediate string // the certificate the root issued for the CSR
}

// InstallIntermediate installs the intermediate certificate the external
// root issued for IntermediateCSR's CSR, with the root, into dir. key is
// the intermediate's key: nil reads dir's intermediate.key (the file
// backend), else it is the token's and keyName names it in errors. It
// checks what Import checks (the key matches, the intermediate is a CA
// with certSign and verifies to the root, the root is a self-signed CA)
// before writing anything; root.pem is written last.
func InstallIntermediate(dir string, src InstallFiles, key crypto.Signer, keyName string, cfg Config) error {
	if err := checkNoCA(dir); err != nil {
		return err
	}
	if key == nil {
		keyName = filepath.Join(dir, IntermediateKeyFile)
		if !fileExists(keyName) {
			return fmt.Errorf("ca: --data %s holds no %s: run \"acmed init --intermediate-csr FILE\" first, with the same --data", dir, IntermediateKeyFile)
		}
		if err := checkDirMode(dir); err != nil {
			return err
		}
		k, err := readKey(keyName)
		if err != nil {
			return err
		}
		key = k
	}
	root, rootPEM, err := readImportCert(src.Root)
	if err != nil {
		return err
	}
	intermediate, intPEM, err := readImportCert(src.Intermediate)
	if err != nil {
		return err
	}
	if err := checkImport(ImportFiles{Root: src.Root, Intermediate: src.Intermediate, Key: keyName}, root, intermediate, key, cfg); err != nil {
		return err
	}
	return writeCAFiles(dir, "install into", []caFile{
		{IntermediateCertFile, intPEM, certPerm},
		{RootCertFile, rootPEM, certPerm}, // last: Exists is true only once the CA is complete
	})
}
