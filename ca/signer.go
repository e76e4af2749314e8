package ca

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
)

// ErrUnavailable is wrapped by signing errors that may pass: the signer (an
// HSM's session, say) failed and is being re-opened. The caller should
// answer "retry later", not record a permanent failure.
var ErrUnavailable = errors.New("ca: signer unavailable")

// PKCS11Config names the token and key of the PKCS#11 backend; the field
// comments give the acmed flags they come from.
type PKCS11Config struct {
	Module     string // --pkcs11-module: the PKCS#11 library (.so)
	TokenLabel string // --pkcs11-token-label
	PINFile    string // --pkcs11-pin-file: the user PIN, mode 0600 or stricter
	KeyLabel   string // --pkcs11-key-label: the intermediate's key pair
	// RootKeyLabel (--pkcs11-root-key-label) is for init alone: the root's
	// key pair is generated in the token under this label and no root.key
	// is written. Empty: the root's key is the root.key file, as with the
	// file backend. serve never needs the root's key.
	RootKeyLabel string
}

// readPIN reads the user PIN from path, refusing a file others may read:
// the PIN unlocks the CA key.
func readPIN(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("ca: --pkcs11-pin-file %s: %w", path, unwrapPath(err))
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("ca: --pkcs11-pin-file %s is open to group or others (mode %04o): run chmod 600 %s", path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ca: --pkcs11-pin-file %s: %w", path, unwrapPath(err))
	}
	pin := strings.TrimRight(string(b), "\r\n")
	if pin == "" {
		return "", fmt.Errorf("ca: --pkcs11-pin-file %s is empty", path)
	}
	return pin, nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
