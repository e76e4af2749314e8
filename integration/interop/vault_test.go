package interop

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/acmed/acmed/ca/vaulttest"
)

// newVaultEnv is newEnv with --ca-backend vault: a real Vault dev server
// (vaulttest) signs, with a token that may only sign and revoke, and
// acmed's own CRL is off (Vault's is the one certificates name).
func newVaultEnv(t *testing.T) (*env, *vaulttest.Server, vaulttest.PKI) {
	t.Helper()
	vs := vaulttest.Start(t)
	p := vs.SetupPKI(t)
	flags := []string{"--ca-backend", "vault", "--vault-addr", vs.Addr, "--vault-role", vaulttest.Role,
		"--vault-token-file", p.TokenFile}
	return newEnvWith(t, flags, nil), vs, p
}

// waitVaultRevoked: acmed recorded the revocation (its audit record)
// and Vault's CRL lists the serial.
func (e *env) waitVaultRevoked(t *testing.T, vs *vaulttest.Server, leaf *x509.Certificate, reason int) {
	t.Helper()
	e.waitLog(t, "msg=audit", "event=certificate.revoke", "serial="+serialHex(leaf)+" ", fmt.Sprintf("reason=%d ", reason))
	err := eventually(30*time.Second, 200*time.Millisecond, func() error {
		resp, err := http.Get(vs.Addr + "/v1/" + vaulttest.Mount + "/crl")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		crl, err := x509.ParseRevocationList(raw)
		if err != nil {
			return err
		}
		for _, r := range crl.RevokedCertificateEntries {
			if r.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return nil
			}
		}
		return fmt.Errorf("Vault's CRL does not list %s", serialHex(leaf))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkVaultLeaf: the certificate names Vault's CRL and OCSP.
func checkVaultLeaf(t *testing.T, p vaulttest.PKI, leaf *x509.Certificate) {
	t.Helper()
	if !slices.Equal(leaf.CRLDistributionPoints, []string{p.CRL}) || !slices.Equal(leaf.OCSPServer, []string{p.OCSP}) {
		t.Errorf("CRL DPs %v, OCSP %v; want Vault's %s and %s", leaf.CRLDistributionPoints, leaf.OCSPServer, p.CRL, p.OCSP)
	}
	if err := leaf.CheckSignatureFrom(p.Intermediate); err != nil {
		t.Errorf("not signed by Vault's intermediate: %v", err)
	}
}

// TestLegoVault: lego issues (http-01, and tls-alpn-01 with an RSA key)
// and revokes through --ca-backend vault.
func TestLegoVault(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	needTool(t, "curl", false)
	e, vs, p := newVaultEnv(t)
	l := newLego(t, e)
	const httpName, tlsName = "http.vault-lego.example", "tls.vault-lego.example"
	l.run(t, append(append(l.http(), domains(httpName)...), "run")...)
	checkVaultLeaf(t, p, l.check(t, httpName))
	l.run(t, append(append([]string{"--key-type", "rsa2048"}, append(l.tls(), domains(tlsName)...)...), "run")...)
	checkVaultLeaf(t, p, l.check(t, tlsName))
	leaf := l.check(t, httpName)
	l.run(t, append(domains(httpName), "revoke", "--keep", "--reason", "1")...)
	e.waitVaultRevoked(t, vs, leaf, 1)
}

// TestCertbotVault: certbot issues (--standalone http-01) and revokes,
// by account key and by certificate key, through --ca-backend vault.
func TestCertbotVault(t *testing.T) {
	t.Parallel()
	e, vs, p := newVaultEnv(t)
	c := newCertbot(t, e)
	c.certonly(t, "a", append(c.standalone(), "-d", "a.vault-certbot.example")...)
	a := c.check(t, "a", "a.vault-certbot.example")
	checkVaultLeaf(t, p, a)
	c.certonly(t, "b", append(c.standalone(), "-d", "b.vault-certbot.example")...)
	b := c.check(t, "b", "b.vault-certbot.example")
	c.run(t, "revoke", "--cert-path", c.live("a", "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
	e.waitVaultRevoked(t, vs, a, 4)
	c.run(t, "revoke", "--cert-path", c.live("b", "cert.pem"), "--key-path", c.live("b", "privkey.pem"),
		"--reason", "keycompromise", "--no-delete-after-revoke")
	e.waitVaultRevoked(t, vs, b, 1)
}
