package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// VaultError is Vault's answer to a request it refused: the HTTP status
// and Vault's own messages, on one line.
type VaultError struct {
	Status int
	Errors []string
}

func (e *VaultError) Error() string {
	msg := strings.Join(e.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	// Vault's messages may span lines (a multierror's list): one line.
	return fmt.Sprintf("Vault answered %d: %s", e.Status, strings.Join(strings.Fields(msg), " "))
}

// describe turns what the api client returns into acmed's errors: a
// refusal that may pass (sealed or standby Vault, 5xx, rate limited) or
// no answer at all wraps ErrUnavailable; any other refusal (403, 400: a
// token or role that is wrong) is permanent. A TLS certificate of Vault's
// that does not verify is said so, naming what it was checked against:
// it is transient too (Vault's certificate may be replaced, and /readyz
// fails meanwhile), but "unreachable" would send the operator to the
// network rather than to --vault-ca-file.
func (c VaultConfig) describe(err error) error {
	if err == nil {
		return nil
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		against := "the system's roots (give the CA it chains to with --vault-ca-file)"
		if c.CAFile != "" {
			against = "--vault-ca-file " + c.CAFile
		}
		return fmt.Errorf("%w: Vault's TLS certificate does not verify against %s: %w", ErrUnavailable, against, err)
	}
	var re *vault.ResponseError
	if errors.As(err, &re) {
		ve := &VaultError{Status: re.StatusCode, Errors: re.Errors}
		if re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests || re.StatusCode == http.StatusPreconditionFailed {
			return fmt.Errorf("%w: %w", ErrUnavailable, ve)
		}
		return ve
	}
	return fmt.Errorf("%w: Vault unreachable: %w", ErrUnavailable, err)
}

// write POSTs body to path with acmed's token. A 403 may mean only that
// the token changed (a token file rewritten by Vault Agent) or expired
// (AppRole): it is retried once with a fresh one.
func (v *Vault) write(ctx context.Context, path string, body map[string]any) (*vault.Secret, error) {
	for attempt := 0; ; attempt++ {
		token, err := v.auth.token(ctx)
		if err != nil {
			return nil, err
		}
		secret, err := v.do(ctx, token, path, body)
		var re *vault.ResponseError
		if attempt == 0 && errors.As(err, &re) && re.StatusCode == http.StatusForbidden && v.auth.refused(token) {
			continue
		}
		return secret, v.cfg.describe(err)
	}
}

func (v *Vault) do(ctx context.Context, token, path string, body map[string]any) (*vault.Secret, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	req := v.client.NewRequest(http.MethodPost, "/v1/"+path)
	req.ClientToken = token
	if err := req.SetJSONBody(body); err != nil {
		return nil, err
	}
	resp, err := v.client.RawRequestWithContext(ctx, req)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNoContent {
		return nil, nil
	}
	return vault.ParseSecret(resp.Body)
}

// vaultAuth holds acmed's Vault token: read from --vault-token-file (and
// read again when Vault refuses it: Vault Agent rewrites its sink file
// when it renews or replaces the token), or got by an AppRole login, done
// again before the token's TTL runs out and when Vault refuses it.
type vaultAuth struct {
	v   *Vault
	cfg VaultConfig

	mu      sync.Mutex
	tok     string
	renewAt time.Time // AppRole: log in again from then on; zero: never
}

func newVaultAuth(cfg VaultConfig) (*vaultAuth, error) {
	a := &vaultAuth{cfg: cfg}
	switch {
	case cfg.TokenFile != "":
		tok, err := readSecretFile("--vault-token-file", cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		a.tok = tok
	case cfg.RoleID != "" && cfg.SecretIDFile != "":
		// Checked now, read again at each login (it may be rotated).
		if _, err := readSecretFile("--vault-approle-secret-id-file", cfg.SecretIDFile); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("ca: vault: no auth: want --vault-token-file, or --vault-approle-role-id with --vault-approle-secret-id-file")
	}
	return a, nil
}

// token is the token to send, logging in first with AppRole when there
// is none or it is due for renewal.
func (a *vaultAuth) token(ctx context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.TokenFile != "" {
		return a.tok, nil
	}
	if a.tok != "" && (a.renewAt.IsZero() || a.v.cfg.now().Before(a.renewAt)) {
		return a.tok, nil
	}
	return a.login(ctx)
}

// login is an AppRole login (auth/approle/login, which needs no policy);
// a.mu is held.
func (a *vaultAuth) login(ctx context.Context) (string, error) {
	secretID, err := readSecretFile("--vault-approle-secret-id-file", a.cfg.SecretIDFile)
	if err != nil {
		return "", err
	}
	secret, err := a.v.do(ctx, "", "auth/approle/login", map[string]any{"role_id": a.cfg.RoleID, "secret_id": secretID})
	if err != nil {
		return "", fmt.Errorf("vault: AppRole login (--vault-approle-role-id %s): %w", a.cfg.RoleID, a.cfg.describe(err))
	}
	if secret == nil || secret.Auth == nil || secret.Auth.ClientToken == "" {
		return "", errors.New("vault: AppRole login answered with no token")
	}
	a.tok, a.renewAt = secret.Auth.ClientToken, time.Time{}
	if ttl := time.Duration(secret.Auth.LeaseDuration) * time.Second; ttl > 0 {
		// Two thirds in: a request in flight never carries a token
		// that expires under it.
		a.renewAt = a.v.cfg.now().Add(ttl * 2 / 3)
	}
	return a.tok, nil
}

// refused reports whether a request Vault refused with used is worth
// trying again: the token file now holds another token, or (AppRole) the
// next request logs in afresh.
func (a *vaultAuth) refused(used string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.TokenFile != "" {
		tok, err := readSecretFile("--vault-token-file", a.cfg.TokenFile)
		if err != nil || tok == used {
			return false
		}
		a.tok = tok
		return true
	}
	if a.tok == used {
		a.tok = ""
	}
	return true
}

// readSecretFile reads a token or secret ID, refusing a file others may
// read: it lets its holder sign as acmed.
func readSecretFile(flag, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("ca: %s %s: %w", flag, path, unwrapPath(err))
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("ca: %s %s is open to group or others (mode %04o): run chmod 600 %s", flag, path, perm, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("ca: %s %s: %w", flag, path, unwrapPath(err))
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("ca: %s %s is empty", flag, path)
	}
	return s, nil
}

// vaultKeyUsages spells key usage bits as Vault's key_usage list.
func vaultKeyUsages(u x509.KeyUsage) []string {
	names := []struct {
		bit  x509.KeyUsage
		name string
	}{
		{x509.KeyUsageDigitalSignature, "DigitalSignature"},
		{x509.KeyUsageContentCommitment, "ContentCommitment"},
		{x509.KeyUsageKeyEncipherment, "KeyEncipherment"},
		{x509.KeyUsageDataEncipherment, "DataEncipherment"},
		{x509.KeyUsageKeyAgreement, "KeyAgreement"},
	}
	var out []string
	for _, n := range names {
		if u&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

// vaultEKUs spells a profile's EKUs as Vault's ext_key_usage list; none
// means serverAuth and clientAuth, as for Local.
func vaultEKUs(ekus []x509.ExtKeyUsage) ([]string, error) {
	if len(ekus) == 0 {
		ekus = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	names := map[x509.ExtKeyUsage]string{
		x509.ExtKeyUsageAny:                            "Any",
		x509.ExtKeyUsageServerAuth:                     "ServerAuth",
		x509.ExtKeyUsageClientAuth:                     "ClientAuth",
		x509.ExtKeyUsageCodeSigning:                    "CodeSigning",
		x509.ExtKeyUsageEmailProtection:                "EmailProtection",
		x509.ExtKeyUsageIPSECEndSystem:                 "IPSECEndSystem",
		x509.ExtKeyUsageIPSECTunnel:                    "IPSECTunnel",
		x509.ExtKeyUsageIPSECUser:                      "IPSECUser",
		x509.ExtKeyUsageTimeStamping:                   "TimeStamping",
		x509.ExtKeyUsageOCSPSigning:                    "OCSPSigning",
		x509.ExtKeyUsageMicrosoftServerGatedCrypto:     "MicrosoftServerGatedCrypto",
		x509.ExtKeyUsageNetscapeServerGatedCrypto:      "NetscapeServerGatedCrypto",
		x509.ExtKeyUsageMicrosoftCommercialCodeSigning: "MicrosoftCommercialCodeSigning",
		x509.ExtKeyUsageMicrosoftKernelCodeSigning:     "MicrosoftKernelCodeSigning",
	}
	out := make([]string, 0, len(ekus))
	for _, e := range ekus {
		n, ok := names[e]
		if !ok {
			return nil, fmt.Errorf("ca: vault: extended key usage %d has no name in Vault", e)
		}
		out = append(out, n)
	}
	return out, nil
}
