package interop

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/ca/crosstest"
)

// crossRootCN names the second root that cross-signs acmed's
// intermediate; lego --preferred-chain asks for it by this name.
const crossRootCN = "acmed interop cross root"

// newCrossEnv is newEnv with acmed serving, beside the default chain, an
// alternate one (--alternate-chain): its intermediate cross-signed by a
// second root, returned with the pool of that root alone.
func newCrossEnv(t *testing.T) (*env, *x509.CertPool) {
	t.Helper()
	cross := crosstest.NewRoot(t, crossRootCN)
	e := newEnvPrepared(t, func(data string) []string {
		inter := crosstest.ReadCert(t, filepath.Join(data, "intermediate.pem"))
		bundle := crosstest.WriteBundle(t, t.TempDir(), "cross.pem", cross.CrossSign(t, inter))
		return []string{"--alternate-chain", bundle}
	})
	roots := x509.NewCertPool()
	roots.AddCert(cross.Cert)
	return e, roots
}

// checkCrossChain asserts that chain is the leaf and the cross-signed
// intermediate: it verifies to the second root and not to acmed's, and
// its topmost certificate's issuer is the second root (what clients'
// --preferred-chain matches).
func (e *env) checkCrossChain(t testing.TB, chain []*x509.Certificate, crossRoots *x509.CertPool) {
	t.Helper()
	if len(chain) != 2 {
		t.Fatalf("%d certificates kept, want the leaf and the cross-signed intermediate", len(chain))
	}
	if !verifies(chain, crossRoots) {
		t.Fatalf("the chain kept does not verify to %s", crossRootCN)
	}
	if verifies(chain, e.acmed.roots) {
		t.Errorf("the preferred chain verifies to acmed's root: the client kept the default")
	}
	if top := chain[len(chain)-1]; top.Issuer.CommonName != crossRootCN {
		t.Errorf("chain ends under %q, want %q", top.Issuer.CommonName, crossRootCN)
	}
	e.waitLog(t, "msg=audit", "event=certificate.issue", "serial="+serialHex(chain[0])+" ")
}

// TestLegoPreferredChain: lego --preferred-chain "<second root's name>"
// follows the certificate's alternate link and keeps the cross-signed
// chain; without the flag lego keeps the default chain, to acmed's root.
func TestLegoPreferredChain(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	e, crossRoots := newCrossEnv(t)
	l := newLego(t, e)

	t.Run("default", func(t *testing.T) {
		const name = "default.chain.lego.example"
		l.run(t, append(append(l.http(), domains(name)...), "run")...)
		chain := readChain(t, l.certFile(name))
		e.checkChain(t, chain, name) // to acmed's root
		if verifies(chain, crossRoots) {
			t.Errorf("the default chain verifies to %s", crossRootCN)
		}
		if top := chain[len(chain)-1]; top.Issuer.CommonName == crossRootCN {
			t.Errorf("default chain ends under %q", top.Issuer.CommonName)
		}
	})
	t.Run("preferred", func(t *testing.T) {
		const name = "preferred.chain.lego.example"
		l.run(t, append(append(l.http(), domains(name)...), "run", "--preferred-chain", crossRootCN)...)
		e.checkCrossChain(t, readChain(t, l.certFile(name)), crossRoots)
		if b, _ := os.ReadFile(l.log); !strings.Contains(string(b), fmt.Sprintf("certificate for the preferred certificate chains %q", crossRootCN)) {
			t.Errorf("lego did not say it took the preferred chain; see %s", l.log)
		}
	})
}

// TestCertbotPreferredChain: certbot --preferred-chain "<second root's
// name>" keeps the cross-signed chain in fullchain.pem; without it the
// default chain, to acmed's root.
func TestCertbotPreferredChain(t *testing.T) {
	t.Parallel()
	needTool(t, "certbot", false)
	e, crossRoots := newCrossEnv(t)
	c := newCertbot(t, e)

	t.Run("default", func(t *testing.T) {
		const name = "default.chain.certbot.example"
		c.certonly(t, name, append(c.standalone(), "-d", name)...)
		c.check(t, name, name) // to acmed's root
		if verifies(readChain(t, c.live(name, "fullchain.pem")), crossRoots) {
			t.Errorf("the default chain verifies to %s", crossRootCN)
		}
	})
	t.Run("preferred", func(t *testing.T) {
		const name = "preferred.chain.certbot.example"
		c.certonly(t, name, append(c.standalone(), "-d", name, "--preferred-chain", crossRootCN)...)
		full := readChain(t, c.live(name, "fullchain.pem"))
		if leaf := readChain(t, c.live(name, "cert.pem"))[0]; !leaf.Equal(full[0]) {
			t.Fatal("cert.pem and fullchain.pem hold different leaves")
		}
		e.checkCrossChain(t, full, crossRoots)
	})
}

// verifies reports whether chain[0] verifies to roots through the rest of
// chain, for TLS servers.
func verifies(chain []*x509.Certificate, roots *x509.CertPool) bool {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	return err == nil
}
