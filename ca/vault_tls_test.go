package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/vaulttest"
)

// TestVaultTLS: with Vault on HTTPS, acmed signs, logs in with AppRole
// and revokes when --vault-ca-file holds the CA of Vault's TLS
// certificate; with the system's roots, or a CA file holding another CA,
// OpenVault refuses with one line naming Vault's address, the failed
// verification and --vault-ca-file.
func TestVaultTLS(t *testing.T) {
	s := vaulttest.Start(t, vaulttest.TLS())
	p := s.SetupPKI(t)
	if !strings.HasPrefix(s.Addr, "https://") || s.CAFile == "" {
		t.Fatalf("vaulttest.TLS: address %s, CA file %q; want https and a CA file", s.Addr, s.CAFile)
	}
	ctx := context.Background()
	appRole := s.Config(p)
	appRole.TokenFile, appRole.RoleID, appRole.SecretIDFile = "", p.RoleID, p.SecretIDFile
	for name, cfg := range map[string]ca.VaultConfig{"token file": s.Config(p), "AppRole": appRole} {
		t.Run("signs with --vault-ca-file, "+name, func(t *testing.T) {
			v := openVault(t, cfg)
			if !v.Root().Equal(p.Root) {
				t.Fatalf("root from Vault %q, want %q", v.Root().Subject, p.Root.Subject)
			}
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			issued, err := v.Sign(ctx, vaultRequest(t, key, "tls.example.test"))
			if err != nil {
				t.Fatalf("Sign over HTTPS: %v", err)
			}
			if err := issued.Leaf.CheckSignatureFrom(p.Intermediate); err != nil {
				t.Fatalf("leaf not signed by Vault's intermediate: %v", err)
			}
			if err := v.Ready(ctx); err != nil {
				t.Errorf("Ready: %v", err)
			}
			if err := v.Revoke(ctx, issued.Serial); err != nil {
				t.Fatalf("Revoke over HTTPS: %v", err)
			}
			if !VaultCRLLists(t, s, issued.Leaf) {
				t.Fatalf("Vault's CRL does not list serial %s", issued.Serial)
			}
		})
	}

	// Another CA: Vault's PKI root, which did not sign its TLS certificate.
	wrong := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(wrong, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, caFile, want string
	}{
		{"system roots", "", "does not verify against the system's roots (give the CA it chains to with --vault-ca-file)"},
		{"another CA", wrong, "does not verify against --vault-ca-file " + wrong},
	} {
		t.Run("refused with "+tt.name, func(t *testing.T) {
			cfg := s.Config(p)
			cfg.CAFile = tt.caFile
			_, err := ca.OpenVault(ctx, cfg)
			if err == nil {
				t.Fatal("OpenVault succeeded")
			}
			msg := err.Error()
			t.Logf("OpenVault: %s", msg)
			for _, want := range []string{"--vault-addr " + s.Addr, tt.want, "x509: certificate signed by unknown authority"} {
				if !strings.Contains(msg, want) {
					t.Errorf("OpenVault: %q; want it to say %q", msg, want)
				}
			}
			if strings.Contains(msg, "\n") || strings.Contains(msg, "unreachable") {
				t.Errorf("OpenVault: %q; want one line, not calling Vault unreachable", msg)
			}
			if !errors.Is(err, ca.ErrUnavailable) {
				t.Errorf("OpenVault: %v; want it to wrap ErrUnavailable (Vault's certificate may be replaced)", err)
			}
		})
	}
}
