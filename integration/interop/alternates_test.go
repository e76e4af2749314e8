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

// TestLegoPreferredChain: acmed serves, beside the default chain, an
// alternate one (--alternate-chain) made of its intermediate cross-signed
// by a second root. lego --preferred-chain "<that root's name>" follows
// the alternate link and keeps the cross-signed chain, which verifies to
// the second root and not to acmed's; without the flag lego keeps the
// default chain, to acmed's root.
func TestLegoPreferredChain(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	cross := crosstest.NewRoot(t, crossRootCN)
	e := newEnvPrepared(t, func(data string) []string {
		inter := crosstest.ReadCert(t, filepath.Join(data, "intermediate.pem"))
		bundle := crosstest.WriteBundle(t, t.TempDir(), "cross.pem", cross.CrossSign(t, inter))
		return []string{"--alternate-chain", bundle}
	})
	l := newLego(t, e)
	crossRoots := x509.NewCertPool()
	crossRoots.AddCert(cross.Cert)

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
		chain := readChain(t, l.certFile(name))
		if len(chain) != 2 {
			t.Fatalf("lego kept %d certificates, want the leaf and the cross-signed intermediate", len(chain))
		}
		if !verifies(chain, crossRoots) {
			t.Fatalf("the chain lego kept does not verify to %s", crossRootCN)
		}
		if verifies(chain, e.acmed.roots) {
			t.Errorf("the preferred chain verifies to acmed's root: lego kept the default")
		}
		if top := chain[len(chain)-1]; top.Issuer.CommonName != crossRootCN {
			t.Errorf("chain ends under %q, want %q", top.Issuer.CommonName, crossRootCN)
		}
		e.waitLog(t, "msg=audit", "event=certificate.issue", "serial="+serialHex(chain[0])+" ")
		if b, _ := os.ReadFile(l.log); !strings.Contains(string(b), fmt.Sprintf("certificate for the preferred certificate chains %q", crossRootCN)) {
			t.Errorf("lego did not say it took the preferred chain; see %s", l.log)
		}
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
