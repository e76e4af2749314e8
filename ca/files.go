package ca

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

const (
	certPerm = 0o644
	keyPerm  = 0o600
	dirPerm  = 0o700
)

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeNew publishes data at path only if nothing is there yet. The data is
// written and synced under a temporary name first and then hard-linked into
// place, so path never holds a half-written file and a second writer (another
// replica running Init on a shared volume) gets ErrExists instead of
// overwriting.
func writeNew(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s is present", ErrExists, path)
		}
		return fmt.Errorf("ca: write %s: %w", path, err)
	}
	return nil
}

// syncDir makes the new directory entries durable. It is best effort because
// some platforms cannot sync a directory; the file contents are already
// synced by writeNew.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// readFile reports the failing path once: a *fs.PathError would otherwise
// print as "open <path>: ..." inside our own "read <path>" context.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("ca: read %s: %w", path, err)
	}
	return b, nil
}

func readCert(path string) (*x509.Certificate, []byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, fmt.Errorf("ca: parse %s: no CERTIFICATE PEM block", path)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("ca: parse %s: %w", path, err)
	}
	return cert, encodeCert(block.Bytes), nil
}

// checkKeyMode refuses a private key others may read. Mode bits are looked
// at, not whether reading fails: root reads anything. Windows has no such
// bits.
func checkKeyMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // reading it reports why
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("ca: private key %s is open to group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	return nil
}

// checkDirMode refuses a CA directory others may write to: they could
// swap the certificates or the key acmed loads.
func checkDirMode(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o022 != 0 {
		return fmt.Errorf("ca: directory %s is writable by group or others (mode %04o): run chmod go-w %s", dir, perm, dir)
	}
	return nil
}

func readKey(path string) (crypto.Signer, error) {
	if err := checkKeyMode(path); err != nil {
		return nil, err
	}
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("ca: parse %s: no PKCS#8 PRIVATE KEY PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parse %s: %w", path, err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("ca: parse %s: key type %T cannot sign", path, k)
	}
	return signer, nil
}
