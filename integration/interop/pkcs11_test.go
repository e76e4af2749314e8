package interop

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca/softhsmtest"
)

// newPKCS11Env is newEnv with acmed's CA in a fresh SoftHSM2 token: init
// generates the root's and the intermediate's keys in it
// (--pkcs11-root-key-label), so every certificate and CRL is signed
// through the token and --data holds no private key.
//
// softhsmtest points SOFTHSM2_CONF at the token with t.Setenv, which a
// parallel test may not do: these tests run one after the other.
func newPKCS11Env(t *testing.T) *env {
	t.Helper()
	tok := softhsmtest.New(t)
	e := newEnvCA(t, []string{"--ca-backend", "pkcs11", "--pkcs11-module", tok.Module,
		"--pkcs11-token-label", tok.Label, "--pkcs11-pin-file", tok.PINFile,
		"--pkcs11-key-label", "acmed-intermediate", "--pkcs11-root-key-label", "acmed-root"})
	for _, f := range []string{"root.key", "intermediate.key"} {
		if _, err := os.Stat(filepath.Join(e.acmed.data, f)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s in acmed's --data with the keys in the token (stat: %v)", f, err)
		}
	}
	return e
}

// TestLegoPKCS11: lego 4.35.2 issues (http-01) and revokes through a CA
// whose keys are in a SoftHSM2 token; the revocation is on acmed's CRL,
// which openssl verifies against the chain and uses to reject the leaf.
func TestLegoPKCS11(t *testing.T) {
	needTool(t, "lego", true)
	needTool(t, "openssl", false)
	e := newPKCS11Env(t)
	l := newLego(t, e)
	const name = "hsm.lego.example"
	l.run(t, append(append(l.http(), domains(name)...), "run")...)
	leaf := l.check(t, name)
	e.validated(t, name, "http-01")
	l.run(t, append(domains(name), "revoke", "--keep", "--reason", "4")...)
	e.waitRevoked(t, leaf, 4, byAccount)
	e.opensslCRL(t, l.certFile(name))
}

// TestCertbotPKCS11: certbot 2.1 issues (http-01, --standalone) and
// revokes by certificate key through a CA whose keys are in a SoftHSM2
// token; the revocation is on acmed's CRL, checked with openssl.
func TestCertbotPKCS11(t *testing.T) {
	needTool(t, "certbot", false)
	needTool(t, "openssl", false)
	e := newPKCS11Env(t)
	c := newCertbot(t, e)
	const name = "hsm.certbot.example"
	c.certonly(t, "hsm", append(c.standalone(), "-d", name)...)
	leaf := c.check(t, "hsm", name)
	e.validated(t, name, "http-01")
	c.run(t, "revoke", "--cert-path", c.live("hsm", "cert.pem"), "--key-path", c.live("hsm", "privkey.pem"),
		"--reason", "keycompromise", "--no-delete-after-revoke")
	e.waitRevoked(t, leaf, 1, byCertKey)
	e.opensslCRL(t, c.live("hsm", "fullchain.pem"))
}

// opensslCRL fetches the CRL at the revoked leaf's distribution point (the
// leaf is the first certificate of bundle, its intermediate the next):
// openssl crl -verify accepts its signature under acmed's chain, and
// openssl verify -crl_check rejects the leaf as revoked.
func (e *env) opensslCRL(t *testing.T, bundle string) {
	t.Helper()
	chain := readChain(t, bundle)
	leaf := chain[0]
	if len(chain) < 2 || len(leaf.CRLDistributionPoints) != 1 {
		t.Fatalf("%s: %d certificates, leaf CRL distribution points %q", bundle, len(chain), leaf.CRLDistributionPoints)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.acmed.roots}}}
	resp, err := hc.Get(leaf.CRLDistributionPoints[0])
	if err != nil {
		t.Fatal(err)
	}
	der, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d, %v", leaf.CRLDistributionPoints[0], resp.StatusCode, err)
	}
	dir := t.TempDir()
	write := func(name, typ string, ders ...[]byte) string {
		var b []byte
		for _, d := range ders {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crl := write("crl.pem", "X509 CRL", der)
	leafFile := write("leaf.pem", "CERTIFICATE", leaf.Raw)
	var inters [][]byte
	for _, c := range chain[1:] {
		inters = append(inters, c.Raw)
	}
	inter := write("intermediate.pem", "CERTIFICATE", inters...)
	caChain := filepath.Join(dir, "chain.pem")
	root, err := os.ReadFile(e.acmed.rootFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caChain, append(must(os.ReadFile(inter)), root...), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("crl", "-in", crl, "-CAfile", caChain, "-verify", "-noout"); err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	if out, err := run("verify", "-CAfile", e.acmed.rootFile, "-untrusted", inter, leafFile); err != nil {
		t.Fatalf("openssl verify without the CRL: %v\n%s", err, out)
	}
	out, err := run("verify", "-crl_check", "-CRLfile", crl, "-CAfile", e.acmed.rootFile, "-untrusted", inter, leafFile)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check of the revoked certificate: %v, want \"certificate revoked\"\n%s", err, out)
	}
	t.Logf("openssl: the token-signed CRL verifies and revokes %s", serialHex(leaf))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
