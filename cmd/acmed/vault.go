package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// backendVault: Vault's PKI secrets engine signs; acmed keeps no CA key.
const backendVault = "vault"

func addVaultFlags(fs *flag.FlagSet, v *ca.VaultConfig) {
	fs.StringVar(&v.Addr, "vault-addr", "", "--ca-backend vault: Vault's address, e.g. https://vault.example:8200")
	fs.StringVar(&v.Mount, "vault-pki-mount", "pki", "--ca-backend vault: path of the PKI secrets engine that signs")
	fs.StringVar(&v.Role, "vault-role", "", "--ca-backend vault: the PKI role acmed signs with (sign-verbatim/ROLE; its max_ttl caps the validity)")
	fs.StringVar(&v.TokenFile, "vault-token-file", "", "--ca-backend vault: file holding acmed's Vault token (mode 0600 or stricter; read again when Vault refuses the token, e.g. after Vault Agent rewrote it)")
	fs.StringVar(&v.RoleID, "vault-approle-role-id", "", "--ca-backend vault: AppRole role ID to log in with (auth/approle), instead of --vault-token-file")
	fs.StringVar(&v.SecretIDFile, "vault-approle-secret-id-file", "", "--ca-backend vault: file holding the AppRole secret ID (mode 0600 or stricter)")
	fs.StringVar(&v.CAFile, "vault-ca-file", "", "--ca-backend vault: PEM file of the CAs Vault's TLS certificate chains to (default: the system's)")
}

// vaultFlags are the --vault-* flags that are set, by name, in order.
func (c config) vaultFlags() []struct{ name, value string } {
	v := c.Vault
	all := []struct{ name, value string }{
		{"--vault-addr", v.Addr},
		{"--vault-role", v.Role},
		{"--vault-token-file", v.TokenFile},
		{"--vault-approle-role-id", v.RoleID},
		{"--vault-approle-secret-id-file", v.SecretIDFile},
		{"--vault-ca-file", v.CAFile},
	}
	if v.Mount != "pki" {
		all = append(all, struct{ name, value string }{"--vault-pki-mount", v.Mount})
	}
	var set []struct{ name, value string }
	for _, f := range all {
		if f.value != "" {
			set = append(set, f)
		}
	}
	return set
}

// checkNoVault refuses --vault-* flags with another backend.
func (c config) checkNoVault() error {
	if set := c.vaultFlags(); len(set) > 0 {
		return fmt.Errorf("%s: only with --ca-backend vault", set[0].name)
	}
	return nil
}

// checkVault checks the flags of --ca-backend vault. acmed keeps no CA
// key then and Vault is the CA of record: its CRL and OCSP responder are
// the ones certificates name (its config/urls), so acmed's own are off
// and their flags refused rather than ignored.
func (c config) checkVault() error {
	v := c.Vault
	u, err := url.Parse(v.Addr)
	switch {
	case v.Addr == "":
		return errors.New("--vault-addr: missing; --ca-backend vault needs --vault-addr, --vault-role and --vault-token-file or AppRole")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
		return fmt.Errorf("--vault-addr %q: want https://HOST[:PORT] (or http) with no path", v.Addr)
	case v.Role == "":
		return errors.New("--vault-role: missing; --ca-backend vault signs with a PKI role (sign-verbatim/ROLE)")
	case v.Mount == "" || v.Mount == "/":
		return errors.New("--vault-pki-mount: must not be empty")
	case v.TokenFile != "" && (v.RoleID != "" || v.SecretIDFile != ""):
		return errors.New("--vault-token-file: not with --vault-approle-*; give one way to log in")
	case v.TokenFile == "" && v.RoleID == "" && v.SecretIDFile == "":
		return errors.New("--vault-token-file: missing; --ca-backend vault needs --vault-token-file, or --vault-approle-role-id with --vault-approle-secret-id-file")
	case v.TokenFile == "" && v.RoleID == "":
		return errors.New("--vault-approle-role-id: missing; --vault-approle-secret-id-file goes with it")
	case v.TokenFile == "" && v.SecretIDFile == "":
		return errors.New("--vault-approle-secret-id-file: missing; --vault-approle-role-id goes with it")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"--pkcs11-module", c.PKCS11.Module != ""},
		{"--pkcs11-token-label", c.PKCS11.TokenLabel != ""},
		{"--pkcs11-pin-file", c.PKCS11.PINFile != ""},
		{"--pkcs11-key-label", c.PKCS11.KeyLabel != ""},
		{"--import-root", c.ImportRoot != ""},
		{"--import-intermediate", c.ImportIntermediate != ""},
		{"--import-key", c.ImportKey != ""},
		{"--intermediate-csr", c.IntermediateCSR != ""},
		{"--intermediate-cert", c.IntermediateCert != ""},
	} {
		if f.set {
			return fmt.Errorf("%s: not with --ca-backend vault (Vault holds the CA and its key)", f.name)
		}
	}
	revocation := []struct {
		name string
		set  bool
	}{
		{"--ocsp", c.OCSP},
		{"--ocsp-base-url", c.OCSPBaseURL != ""},
		{"--ocsp-delegated", c.OCSPDelegated},
		{"--crl-base-url", c.CRLBaseURL != ""},
		{"--crl-listen", c.CRLListen != ""},
		{"--crl-refresh", c.CRLRefresh != defaultCRLRefresh},
		{"--crl-validity", c.CRLValidity != defaultCRLValidity},
	}
	for _, f := range revocation {
		if f.set {
			return fmt.Errorf("%s: not with --ca-backend vault: Vault is the CA of record, and certificates name its own CRL and OCSP URLs (vault write %s/config/urls)", f.name, v.Mount)
		}
	}
	return nil
}

// The --crl-refresh and --crl-validity defaults, to tell them set.
const (
	defaultCRLRefresh  = time.Minute
	defaultCRLValidity = 24 * time.Hour
)

// loadVaultCA connects to Vault and fetches the mount's CA chain; no
// file in --data is needed. A Vault that cannot be reached or is sealed
// stops serve here (one line); a token or role Vault refuses shows when
// serve asks for its own HTTPS certificate, and later as a failing
// /readyz.
func loadVaultCA(c config) (*ca.Vault, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return ca.OpenVault(ctx, c.Vault)
}

// initVault is init for --ca-backend vault: there is no CA to create, as
// Vault holds it. It checks that Vault answers and writes Vault's root to
// --data/root.pem, the file clients (and acmed admin) trust acmed's
// HTTPS and its certificates through; one already there must be it.
func initVault(c config, stdout io.Writer) error {
	v, err := loadVaultCA(c)
	if err != nil {
		return err
	}
	path := filepath.Join(c.Data, ca.RootCertFile)
	if old, err := os.ReadFile(path); err == nil {
		if bytes.Equal(bytes.TrimSpace(old), bytes.TrimSpace(v.RootPEM())) {
			fmt.Fprintf(stdout, "%s already holds Vault's root (mount %s at %s); nothing else to initialize: Vault holds the CA\n", path, c.Vault.Mount, c.Vault.Addr)
			return nil
		}
		return fmt.Errorf("--data %s: %s holds another root than Vault's (mount %s at %s); use another --data, or remove it if it is no CA's any more", c.Data, path, c.Vault.Mount, c.Vault.Addr)
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return fmt.Errorf("--data %s: %w", c.Data, err)
	}
	if err := os.WriteFile(path, v.RootPEM(), 0o644); err != nil {
		return fmt.Errorf("--data %s: %w", c.Data, err)
	}
	fmt.Fprintf(stdout, "wrote Vault's root (mount %s at %s) to %s for clients to trust; nothing else to initialize: Vault holds the CA, and acmed serve fetches its chain at start\n", c.Vault.Mount, c.Vault.Addr, path)
	return nil
}

// claimVaultCA records Vault's CA in the store on the first start and
// refuses a store another root's CA claimed. Vault rotates its issuers
// on its own, so a new issuing CA under the same root is noted, not
// refused.
func claimVaultCA(ctx context.Context, c config, store storage.CAs, v *ca.Vault, log *slog.Logger) error {
	ours := storage.CAIdentity{Root: fingerprint(v.Root()), Intermediate: fingerprint(v.Intermediate())}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	stored, err := store.ClaimCA(ctx, ours)
	if err != nil {
		if isRedisURL(c.Store) {
			return fmt.Errorf("--store %s: recording the CA: %w", redactURL(c.Store), err)
		}
		return err
	}
	if stored.Root != ours.Root {
		return fmt.Errorf("store %s belongs to another CA: the store's root certificate has SHA-256 fingerprint %s, Vault's (mount %s at %s) has %s",
			storeName(c), colonHex(stored.Root), c.Vault.Mount, c.Vault.Addr, colonHex(ours.Root))
	}
	if stored.Intermediate != ours.Intermediate {
		log.Info("Vault's issuing CA is not the one the store first served (same root): Vault rotated its issuer",
			"issuer", v.Intermediate().Subject.String(), "fingerprint", colonHex(ours.Intermediate))
	}
	return nil
}

// vaultRevoker is Vault when it is the CA of record, else nil (an
// untyped nil: authority.Config.Revoker is an interface).
func vaultRevoker(backend caBackend) authority.Revoker {
	if v, ok := backend.(*ca.Vault); ok {
		return v
	}
	return nil
}

// readiness is /readyz's check: the store's, and the signer's when it
// can fail on its own (Vault: a token or role refused, Vault sealed).
func readiness(storePing func(context.Context) error, backend caBackend) func(context.Context) error {
	r, ok := backend.(interface{ Ready(context.Context) error })
	if !ok {
		return storePing
	}
	return func(ctx context.Context) error {
		if err := storePing(ctx); err != nil {
			return err
		}
		return r.Ready(ctx)
	}
}
