package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges/challengetest"
)

// orgPKI is an organisation's existing CA, made the way its own PKI
// would: a root, and an intermediate with MaxPathLen 0 under it.
type orgPKI struct {
	root, intermediate *x509.Certificate
	rootFile, intFile  string
	keyFile            string
}

func newOrgPKI(t *testing.T, intKey crypto.Signer, keyPEM []byte) orgPKI {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := func(serial int64, cn string) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{Organization: []string{"Example Org"}, CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(5 * 365 * 24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true, IsCA: true,
		}
	}
	create := func(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	rootTmpl := tmpl(1, "Example Org Root")
	root := create(rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	intTmpl := tmpl(2, "Example Org Issuing CA")
	intTmpl.MaxPathLen, intTmpl.MaxPathLenZero = 0, true
	inter := create(intTmpl, root, intKey.Public(), rootKey)

	dir := t.TempDir()
	p := orgPKI{root: root, intermediate: inter,
		rootFile: filepath.Join(dir, "root.crt"), intFile: filepath.Join(dir, "issuing.crt"), keyFile: filepath.Join(dir, "issuing.key")}
	for path, b := range map[string][]byte{
		p.rootFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}),
		p.intFile:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: inter.Raw}),
		p.keyFile:  keyPEM,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

func (p orgPKI) initArgs(data string) []string {
	return []string{"init", "--data", data, "--import-root", p.rootFile, "--import-intermediate", p.intFile, "--import-key", p.keyFile}
}

// TestImportedCAIssues imports an organisation's CA with acmed init, runs
// the real acmed serve on it, and issues with x/crypto/acme: the
// certificate is signed by the imported intermediate and chains to the
// imported root. Serving twice shows the store's CA claim accepts it.
func TestImportedCAIssues(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		key    crypto.Signer
		keyPEM []byte
	}{
		{"ECDSA P-256 SEC1", ecKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{"RSA PKCS#1", rsaKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pki := newOrgPKI(t, tt.key, tt.keyPEM)
			data := filepath.Join(t.TempDir(), "data")
			if out, err := exec.Command(acmedBinary, pki.initArgs(data)...).CombinedOutput(); err != nil {
				t.Fatalf("acmed init --import-*: %v: %s", err, out)
			}
			fi, err := os.Stat(filepath.Join(data, ca.IntermediateKeyFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, mode %v; want 0600", ca.IntermediateKeyFile, err, fi)
			}
			// Again with --exist-ok: the same CA is accepted unchanged.
			if out, err := exec.Command(acmedBinary, append(pki.initArgs(data), "--exist-ok")...).CombinedOutput(); err != nil {
				t.Fatalf("acmed init --import-* --exist-ok: %v: %s", err, out)
			}

			dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
			args := []string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}
			for round := 0; round < 2; round++ {
				s := startAcmed(t, data, args...)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c := newAccount(t, ctx, s)
				name := "imported" + strconv.Itoa(round) + ".example"
				der, _ := issue(t, ctx, c, h, name)
				cancel()
				leaf := verifyChain(t, s, der, name)
				if err := leaf.CheckSignatureFrom(pki.intermediate); err != nil {
					t.Fatalf("leaf not signed by the imported intermediate: %v", err)
				}
				roots := x509.NewCertPool()
				roots.AddCert(pki.root)
				inter := x509.NewCertPool()
				inter.AddCert(pki.intermediate)
				if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter}); err != nil {
					t.Fatalf("leaf does not chain to the imported root: %v", err)
				}
				s.Stop()
			}
		})
	}
}

// TestImportRefusedByInit: acmed init refuses a bad import with one line
// naming the file, and a non-zero exit.
func TestImportRefusedByInit(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(other)
	if err != nil {
		t.Fatal(err)
	}
	pki := newOrgPKI(t, key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	data := filepath.Join(t.TempDir(), "data")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"key mismatch", pki.initArgs(data), pki.keyFile},
		{"root alone", []string{"init", "--data", data, "--import-root", pki.rootFile}, "--import-intermediate"},
		{"existing CA", nil, "already holds a different CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if args == nil {
				other := filepath.Join(t.TempDir(), "data")
				if out, err := exec.Command(acmedBinary, "init", "--data", other).CombinedOutput(); err != nil {
					t.Fatalf("acmed init: %v: %s", err, out)
				}
				good := goodOrgPKI(t)
				args = append(good.initArgs(other), "--exist-ok")
			}
			out, err := exec.Command(acmedBinary, args...).CombinedOutput()
			if err == nil {
				t.Fatalf("acmed %s succeeded: %s", strings.Join(args, " "), out)
			}
			msg := strings.TrimSpace(string(out))
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.want) {
				t.Fatalf("output %q: want one line naming %q", msg, tt.want)
			}
		})
	}
	if _, err := os.Stat(data); err == nil {
		t.Errorf("a refused import created %s", data)
	}
}

// goodOrgPKI is an organisation's CA with a P-256 intermediate key in
// PKCS#8 PEM that matches.
func goodOrgPKI(t *testing.T) orgPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return newOrgPKI(t, key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
