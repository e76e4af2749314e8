package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/ca/vaulttest"
	"github.com/acmed/acmed/challenges/challengetest"
)

// vaultFlags are acmed's --ca-backend vault flags for s with the token
// file.
func vaultFlags(s *vaulttest.Server, p vaulttest.PKI) []string {
	return []string{"--ca-backend", "vault", "--vault-addr", s.Addr, "--vault-role", vaulttest.Role, "--vault-token-file", p.TokenFile}
}

// vaultInit runs acmed init --ca-backend vault, which writes Vault's root
// to --data/root.pem.
func vaultInit(t *testing.T, data string, flags []string) {
	t.Helper()
	out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, flags...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("acmed init --ca-backend vault: %v: %s", err, out)
	}
}

// TestVaultCAIssuesAndRevokes: with --ca-backend vault, Vault signs what
// acmed validated, the chain and the CRL/OCSP URLs are Vault's, and a
// revocation through ACME reaches Vault's CRL. acmed's token has only the
// sign-verbatim and revoke paths. Run with the token file and with
// AppRole.
func TestVaultCAIssuesAndRevokes(t *testing.T) {
	vs := vaulttest.Start(t)
	p := vs.SetupPKI(t)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"token file", vaultFlags(vs, p)},
		{"AppRole", []string{"--ca-backend", "vault", "--vault-addr", vs.Addr, "--vault-role", vaulttest.Role,
			"--vault-approle-role-id", p.RoleID, "--vault-approle-secret-id-file", p.SecretIDFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := filepath.Join(t.TempDir(), "data")
			vaultInit(t, data, tc.flags)
			rootPEM, err := os.ReadFile(filepath.Join(data, "root.pem"))
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(rootPEM); b == nil || !bytes.Equal(b.Bytes, p.Root.Raw) {
				t.Fatal("init's root.pem is not Vault's root")
			}
			for _, f := range []string{"intermediate.key", "root.key", "intermediate.pem"} {
				if _, err := os.Stat(filepath.Join(data, f)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("init wrote %s with --ca-backend vault (stat: %v)", f, err)
				}
			}
			dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
			s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, tc.flags...)...)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			base := strings.TrimSuffix(s.dir, "/directory")
			if code, body, err := get(s.httpClient(), base+"/roots.pem"); err != nil || code != 200 || !bytes.Equal(bytes.TrimSpace([]byte(body)), bytes.TrimSpace(rootPEM)) {
				t.Errorf("/roots.pem: %d %v; want Vault's root", code, err)
			}

			c := newAccount(t, ctx, s)
			der, _ := issue(t, ctx, c, h, "vault.example")
			leaf := verifyChain(t, s, der, "vault.example")
			if err := leaf.CheckSignatureFrom(p.Intermediate); err != nil {
				t.Fatalf("leaf not signed by Vault's intermediate: %v", err)
			}
			if !slices.Equal(leaf.CRLDistributionPoints, []string{p.CRL}) || !slices.Equal(leaf.OCSPServer, []string{p.OCSP}) {
				t.Errorf("CRL DPs %v, OCSP %v; want Vault's %s and %s", leaf.CRLDistributionPoints, leaf.OCSPServer, p.CRL, p.OCSP)
			}
			if len(der) != 2 {
				t.Errorf("chain of %d certificates; want the leaf and Vault's intermediate", len(der))
			}

			if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonKeyCompromise); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			if !vaultRevoked(t, vs, leaf) {
				t.Fatalf("Vault does not list %x as revoked", leaf.SerialNumber)
			}
			// acmed recorded it too.
			if log := s.ReadLog(); !strings.Contains(log, "event=certificate.revoke serial="+hex.EncodeToString(leaf.SerialNumber.Bytes())) {
				t.Errorf("acmed's log has no revocation record of %x", leaf.SerialNumber)
			}
			s.Stop()
		})
	}
}

// vaultRevoked: Vault's cert/SERIAL has a revocation time and its CRL
// lists the serial.
func vaultRevoked(t *testing.T, vs *vaulttest.Server, leaf *x509.Certificate) bool {
	t.Helper()
	serial := colonSerial(leaf.SerialNumber.Bytes())
	data := vs.Must(t, http.MethodGet, vaulttest.Mount+"/cert/"+serial, nil)
	if rt, _ := data["revocation_time"].(float64); rt == 0 {
		t.Logf("cert/%s: revocation_time %v", serial, data["revocation_time"])
		return false
	}
	resp, err := vs.HTTPClient().Get(vs.Addr + "/v1/" + vaulttest.Mount + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	crl, err := x509.ParseRevocationList(raw)
	if err != nil {
		t.Fatalf("Vault's CRL: %v", err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

func colonSerial(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = strconv.FormatUint(uint64(x)|0x100, 16)[1:]
	}
	return strings.Join(parts, ":")
}

// TestVaultRefusedAtIssuance: a token Vault stops taking gives the
// client serverInternal (the cause in acmed's log only, one line) and a
// failing /readyz, until the token file holds a good token again; a
// sealed Vault gives 503 + Retry-After and leaves the order ready, so the
// client finalizes again once Vault is unsealed.
func TestVaultRefusedAtIssuance(t *testing.T) {
	vs := vaulttest.Start(t)
	p := vs.SetupPKI(t)
	flags := vaultFlags(vs, p)
	data := filepath.Join(t.TempDir(), "data")
	vaultInit(t, data, flags)
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, flags...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newAccount(t, ctx, s)
	c.RetryBackoff = func(int, *http.Request, *http.Response) time.Duration { return -1 }
	waitReady(t, s, http.StatusOK)

	t.Run("refused token", func(t *testing.T) {
		revokeTokens(t, vs)
		o, csr := readyOrder(t, ctx, c, h, "refused.example")
		_, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		// The order is invalid, its error serverInternal without the cause.
		var oe *acme.OrderError
		if !errors.As(err, &oe) || oe.Problem == nil || oe.Problem.ProblemType != "urn:ietf:params:acme:error:serverInternal" {
			t.Fatalf("finalize with a refused token: %v; want the order invalid with serverInternal", err)
		}
		if d := oe.Problem.Detail; strings.Contains(d, "403") || strings.Contains(d, "permission") {
			t.Errorf("the problem shows the cause: %q", d)
		}
		waitReady(t, s, http.StatusServiceUnavailable)
		var lines []string
		for _, l := range strings.Split(s.ReadLog(), "\n") {
			if strings.Contains(l, "issuance failed") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "permission denied") {
			t.Errorf("acmed's log: want one line naming the refusal (permission denied), got %q", lines)
		}
		t.Log(lines)
		// The operator puts a good token in the file: ready again,
		// with no restart.
		if err := os.WriteFile(p.TokenFile, []byte(vs.NewToken(t, "1h")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitReady(t, s, http.StatusOK)
	})

	t.Run("sealed", func(t *testing.T) {
		o, csr := readyOrder(t, ctx, c, h, "sealed.example")
		vs.Seal(t)
		_, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		var ae *acme.Error
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable || ae.Header.Get("Retry-After") == "" {
			t.Fatalf("finalize on a sealed Vault: %v; want 503 with Retry-After", err)
		}
		waitReady(t, s, http.StatusServiceUnavailable)
		vs.Unseal(t)
		waitReady(t, s, http.StatusOK)
		o, err = c.GetOrder(ctx, o.URI)
		if err != nil || o.Status != acme.StatusReady {
			t.Fatalf("order after the 503: %v %+v; want ready", err, o)
		}
		der, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		if err != nil {
			t.Fatalf("finalize again once unsealed: %v", err)
		}
		// A revocation while Vault is sealed is refused with 503 and
		// recorded nowhere: once unsealed it goes through.
		vs.Seal(t)
		err = c.RevokeCert(ctx, nil, der[0], acme.CRLReasonUnspecified)
		if !errors.As(err, &ae) || ae.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("revoke on a sealed Vault: %v; want 503", err)
		}
		vs.Unseal(t)
		if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonUnspecified); err != nil {
			t.Fatalf("revoke once unsealed: %v", err)
		}
		leaf, _ := x509.ParseCertificate(der[0])
		if !vaultRevoked(t, vs, leaf) {
			t.Fatal("Vault does not list the certificate revoked")
		}
	})
	s.Stop()
}

// revokeTokens revokes every token but the root's.
func revokeTokens(t *testing.T, vs *vaulttest.Server) {
	t.Helper()
	list := vs.Must(t, "LIST", "auth/token/accessors", nil)
	keys, _ := list["keys"].([]any)
	for _, k := range keys {
		info := vs.Must(t, http.MethodPost, "auth/token/lookup-accessor", map[string]any{"accessor": k})
		if pols, _ := info["policies"].([]any); slices.Contains(pols, any("root")) {
			continue
		}
		vs.Must(t, http.MethodPost, "auth/token/revoke-accessor", map[string]any{"accessor": k})
	}
}

// readyOrder makes an order for name ready and returns it with a CSR.
func readyOrder(t *testing.T, ctx context.Context, c *acme.Client, h *challengetest.HTTP01, name string) (*acme.Order, []byte) {
	t.Helper()
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	authorize(t, ctx, c, o, "http-01", func(_ *acme.Authorization, chal *acme.Challenge) {
		resp, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(chal.Token, resp)
	})
	if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != acme.StatusReady {
		t.Fatalf("order not ready: %v %+v", err, o)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return o, csr
}

// TestVaultRefused: serve and init stop with one line naming what is
// wrong, and a non-zero exit.
func TestVaultRefused(t *testing.T) {
	vs := vaulttest.Start(t)
	p := vs.SetupPKI(t)
	data := filepath.Join(t.TempDir(), "data")
	good := vaultFlags(vs, p)
	vaultInit(t, data, good)
	with := func(flag, value string) []string {
		out := append([]string(nil), good...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	loose := vaulttest.WriteSecret(t, "loose", p.Token)
	if err := os.Chmod(loose, 0o640); err != nil {
		t.Fatal(err)
	}
	serve := []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"token file readable by the group", append([]string{"init", "--data", data}, with("--vault-token-file", loose)...), "--vault-token-file " + loose + " is open to group or others (mode 0640)"},
		{"token file missing", append(serve, with("--vault-token-file", "/nonexistent/token")...), "--vault-token-file /nonexistent/token"},
		{"no role", append(serve, with("--vault-role", "")...), "--vault-role: missing"},
		{"token and AppRole", append(serve, with("--vault-approle-role-id", p.RoleID)...), "--vault-token-file: not with --vault-approle-*"},
		{"wrong role at start", append(serve, with("--vault-role", "nope")...), "sign-verbatim/nope: Vault answered 403"},
		{"refused token at start", append(serve, with("--vault-token-file", vaulttest.WriteSecret(t, "bad", "hvs.bogus"))...), "Vault answered 403"},
		{"unreachable", append(serve, with("--vault-addr", "http://127.0.0.1:1")...), "--vault-addr http://127.0.0.1:1: fetching the CA chain"},
		{"--ocsp", append(append(serve, good...), "--ocsp"), "--ocsp: not with --ca-backend vault"},
		{"--crl-listen", append(serve, with("--crl-listen", "127.0.0.1:0")...), "--crl-listen: not with --ca-backend vault"},
		{"--vault-addr with the file backend", []string{"serve", "--data", data, "--vault-addr", vs.Addr}, "--vault-addr: only with --ca-backend vault"},
		{"bad address", append(serve, with("--vault-addr", "vault:8200")...), `--vault-addr "vault:8200": want https://HOST[:PORT]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(acmedBinary, tc.args...).CombinedOutput()
			msg := strings.TrimSpace(string(out))
			if err == nil || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("acmed %v: %v, output %q; want one line with %q and a non-zero exit", tc.args[0], err, msg, tc.want)
			}
		})
	}
	t.Run("sealed at start", func(t *testing.T) {
		vs.Seal(t)
		t.Cleanup(func() { vs.Unseal(t) })
		out, err := exec.Command(acmedBinary, append(serve, good...)...).CombinedOutput()
		msg := strings.TrimSpace(string(out))
		if err == nil || !strings.Contains(msg, "Vault is sealed") || strings.Contains(msg, "\n") {
			t.Fatalf("serve on a sealed Vault: %v, output %q; want one line saying it is sealed", err, msg)
		}
	})
}
