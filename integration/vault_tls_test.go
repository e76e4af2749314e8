package integration

import (
	"context"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/ca/vaulttest"
	"github.com/acmed/acmed/challenges/challengetest"
)

// TestVaultTLS: with Vault on HTTPS (its dev server's own CA), acmed init
// and serve work with --vault-ca-file naming that CA: a client issues and
// revokes through Vault. Without the flag (the system's roots) or with
// another CA, init and serve stop with one line naming Vault's address and
// the failed verification, and a non-zero exit.
func TestVaultTLS(t *testing.T) {
	vs := vaulttest.Start(t, vaulttest.TLS())
	p := vs.SetupPKI(t)
	base := vaultFlags(vs, p)
	good := append(append([]string(nil), base...), "--vault-ca-file", vs.CAFile)

	t.Run("issues and revokes with --vault-ca-file", func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		vaultInit(t, data, good)
		dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
		s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, good...)...)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := newAccount(t, ctx, s)
		der, _ := issue(t, ctx, c, h, "vault-tls.example")
		leaf := verifyChain(t, s, der, "vault-tls.example")
		if err := leaf.CheckSignatureFrom(p.Intermediate); err != nil {
			t.Fatalf("leaf not signed by Vault's intermediate: %v", err)
		}
		if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonKeyCompromise); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if !vaultRevoked(t, vs, leaf) {
			t.Fatalf("Vault does not list %x as revoked", leaf.SerialNumber)
		}
		s.Stop()
	})

	// Another CA: Vault's PKI root, which did not sign its TLS certificate.
	wrong := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(wrong, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	initialized := filepath.Join(t.TempDir(), "data")
	vaultInit(t, initialized, good)
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"system roots", base, "does not verify against the system's roots (give the CA it chains to with --vault-ca-file)"},
		{"another CA", append(append([]string(nil), base...), "--vault-ca-file", wrong), "does not verify against --vault-ca-file " + wrong},
	} {
		for _, cmd := range []struct{ name, data string }{
			{"init", filepath.Join(t.TempDir(), "data")},
			{"serve", initialized},
		} {
			t.Run(cmd.name+" refused with "+tc.name, func(t *testing.T) {
				args := []string{cmd.name, "--data", cmd.data}
				if cmd.name == "serve" {
					args = append(args, "--listen", "127.0.0.1:0")
				}
				out, err := exec.Command(acmedBinary, append(args, tc.flags...)...).CombinedOutput()
				msg := strings.TrimSpace(string(out))
				t.Logf("acmed %s: %s", cmd.name, msg)
				if err == nil || strings.Contains(msg, "\n") {
					t.Fatalf("acmed %s: %v, output %q; want one line and a non-zero exit", cmd.name, err, msg)
				}
				for _, want := range []string{"--vault-addr " + vs.Addr, tc.want, "x509: certificate signed by unknown authority"} {
					if !strings.Contains(msg, want) {
						t.Errorf("acmed %s: %q; want it to say %q", cmd.name, msg, want)
					}
				}
			})
		}
	}
}
