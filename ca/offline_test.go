package ca_test

import (
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/ca"
)

// offlineRoot is an external root the test holds the key of, as an
// organisation's offline root would.
type offlineRoot struct {
	cert *x509.Certificate
	key  crypto.Signer
	path string
}

func newOfflineRoot(t *testing.T) offlineRoot {
	t.Helper()
	key := mustECDSA(t, elliptic.P384())
	tmpl := caTemplate(1, "Offline Root", epoch)
	cert := createCert(t, tmpl, tmpl, key.Public(), key)
	path := filepath.Join(t.TempDir(), "root.pem")
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	return offlineRoot{cert: cert, key: key, path: path}
}

// readCSR parses the PEM CSR at path and checks its signature.
func readCSR(t *testing.T, path string) *x509.CertificateRequest {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		t.Fatalf("%s: no CERTIFICATE REQUEST PEM block", path)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	return csr
}

// signCSR issues an intermediate for csr from root (or from signer, when
// the test wants another issuer), with tmpl's changes applied, and writes
// it to a file.
func signCSR(t *testing.T, root offlineRoot, csr *x509.CertificateRequest, edit func(*x509.Certificate)) string {
	t.Helper()
	tmpl := caTemplate(7, csr.Subject.CommonName, epoch)
	tmpl.MaxPathLen, tmpl.MaxPathLenZero = 0, true
	if edit != nil {
		edit(tmpl)
	}
	cert := createCert(t, tmpl, root.cert, csr.PublicKey, root.key)
	path := filepath.Join(t.TempDir(), "intermediate.pem")
	writeFile(t, path, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	return path
}

func TestOfflineRootFileBackend(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	dir := filepath.Join(t.TempDir(), "ca")
	csrPath := filepath.Join(t.TempDir(), "int.csr")
	if err := ca.IntermediateCSR(dir, cfg, csrPath); err != nil {
		t.Fatalf("IntermediateCSR: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, ca.IntermediateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("intermediate.key mode %04o, want 0600", perm)
	}
	for _, f := range []string{ca.RootCertFile, ca.RootKeyFile, ca.IntermediateCertFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written by the CSR step", f)
		}
	}
	if ca.Exists(dir) {
		t.Error("Exists is true before the intermediate is installed")
	}
	if err := ca.IntermediateCSR(dir, cfg, filepath.Join(t.TempDir(), "again.csr")); err == nil {
		t.Error("a second IntermediateCSR replaced the pending key")
	} else {
		checkOneLine(t, err, []string{ca.IntermediateKeyFile, "--intermediate-cert"})
	}

	root := newOfflineRoot(t)
	intPath := signCSR(t, root, readCSR(t, csrPath), nil)
	src := ca.InstallFiles{Root: root.path, Intermediate: intPath}
	if err := ca.InstallIntermediate(dir, src, nil, "", cfg); err != nil {
		t.Fatalf("InstallIntermediate: %v", err)
	}
	l, err := ca.Load(dir, cfg)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !l.Root().Equal(root.cert) {
		t.Error("the loaded root is not the external root")
	}
	if _, err := os.Stat(filepath.Join(dir, ca.RootKeyFile)); err == nil {
		t.Error("root.key written: the root's key is the external owner's")
	}
	if err := ca.InstallIntermediate(dir, src, nil, "", cfg); !errors.Is(err, ca.ErrExists) {
		t.Errorf("second install: %v, want ErrExists", err)
	}
}

func TestOfflineRootRefusals(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	tests := []struct {
		name string
		edit func(*x509.Certificate)
		// other signs with another root of the same name; otherKey
		// certifies a key other than the CSR's.
		other, otherKey bool
		want            []string
	}{
		{name: "not a CA", edit: func(c *x509.Certificate) { c.IsCA, c.MaxPathLenZero = false, false }, want: []string{"intermediate", "BasicConstraints"}},
		{name: "no certSign", edit: func(c *x509.Certificate) { c.KeyUsage = x509.KeyUsageDigitalSignature }, want: []string{"certSign"}},
		{name: "another root", other: true, want: []string{"does not verify to root"}},
		{name: "another key", otherKey: true, want: []string{ca.IntermediateKeyFile, "does not match"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			csrPath := filepath.Join(t.TempDir(), "int.csr")
			if err := ca.IntermediateCSR(dir, cfg, csrPath); err != nil {
				t.Fatal(err)
			}
			csr := readCSR(t, csrPath)
			root := newOfflineRoot(t)
			signer := root
			if tt.other {
				signer = newOfflineRoot(t)
			}
			if tt.otherKey {
				csr.PublicKey = mustECDSA(t, elliptic.P256()).Public()
			}
			intPath := signCSR(t, signer, csr, tt.edit)
			err := ca.InstallIntermediate(dir, ca.InstallFiles{Root: root.path, Intermediate: intPath}, nil, "", cfg)
			if err == nil {
				t.Fatal("installed")
			}
			checkOneLine(t, err, tt.want)
			if ca.Exists(dir) {
				t.Error("root.pem written despite the refusal")
			}
			if _, err := os.Stat(filepath.Join(dir, ca.IntermediateCertFile)); err == nil {
				t.Error("intermediate.pem written despite the refusal")
			}
		})
	}
	t.Run("no key yet", func(t *testing.T) {
		dir := t.TempDir()
		err := ca.InstallIntermediate(dir, ca.InstallFiles{Root: "r.pem", Intermediate: "i.pem"}, nil, "", cfg)
		if err == nil {
			t.Fatal("installed without a key")
		}
		checkOneLine(t, err, []string{"--intermediate-csr"})
	})
}
