//go:build cgo

package ca_test

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/ca"
)

// The offline-root flow with the intermediate's key generated in the
// token: --data never holds a private key.
func TestOfflineRootPKCS11(t *testing.T) {
	cfg := softHSM(t)
	c := ca.Config{Now: fixedNow(epoch)}
	dir := filepath.Join(t.TempDir(), "ca")
	csrPath := filepath.Join(t.TempDir(), "int.csr")
	if err := ca.PKCS11IntermediateCSR(dir, c, cfg, csrPath); err != nil {
		t.Fatalf("PKCS11IntermediateCSR: %v", err)
	}
	csr := readCSR(t, csrPath)
	signer := openToken(t, cfg)
	if p, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(csr.PublicKey) {
		t.Fatal("the CSR is not for the token's key")
	}
	if err := ca.PKCS11IntermediateCSR(dir, c, cfg, filepath.Join(t.TempDir(), "again.csr")); err == nil {
		t.Error("a second CSR made another key under the same label")
	}

	root := newOfflineRoot(t)
	intPath := signCSR(t, root, csr, nil)
	name := fmt.Sprintf("--pkcs11-key-label %q", cfg.KeyLabel)
	if err := ca.InstallIntermediate(dir, ca.InstallFiles{Root: root.path, Intermediate: intPath}, signer, name, c); err != nil {
		t.Fatalf("InstallIntermediate: %v", err)
	}
	for _, f := range []string{ca.IntermediateKeyFile, ca.RootKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written in the offline-root flow with a token key", f)
		}
	}
	if _, err := ca.LoadWithSigner(dir, c, signer, name); err != nil {
		t.Fatalf("LoadWithSigner: %v", err)
	}
}
