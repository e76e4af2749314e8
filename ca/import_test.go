package ca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

// importCA is an organisation's CA as files: what acmed init --import-*
// reads.
type importCA struct {
	files ca.ImportFiles
	root  *x509.Certificate
}

type importOpts struct {
	intKey      crypto.Signer
	keyPEM      func(crypto.Signer) []byte // nil: PKCS#8
	intNotCA    bool
	intNoUsage  bool
	rootNotSelf bool // the root file holds a certificate issued by another CA
	otherRoot   bool // the intermediate is signed by a different root than the file holds
	wrongKey    bool // the key file holds another key
}

func pkcs8PEM(tb testing.TB) func(crypto.Signer) []byte {
	return func(k crypto.Signer) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
}

func sec1PEM(tb testing.TB) func(crypto.Signer) []byte {
	return func(k crypto.Signer) []byte {
		der, err := x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
		if err != nil {
			tb.Fatal(err)
		}
		// openssl ecparam -genkey writes the parameters first.
		params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}})
		return append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})...)
	}
}

func pkcs1PEM(k crypto.Signer) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))})
}

func mustECDSA(tb testing.TB, c elliptic.Curve) crypto.Signer {
	tb.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func mustRSA(tb testing.TB) crypto.Signer {
	tb.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func createCert(tb testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	tb.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func caTemplate(serial int64, cn string, now time.Time) *x509.Certificate {
	return &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{Organization: []string{"Example Org"}, CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
}

// writeImportCA builds a root and an intermediate (MaxPathLen 0) as an
// organisation's PKI would, and writes them and the key to files.
func writeImportCA(tb testing.TB, now time.Time, o importOpts) importCA {
	tb.Helper()
	rootKey := mustECDSA(tb, elliptic.P384())
	rootTmpl := caTemplate(1, "Example Root", now)
	root := createCert(tb, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	signer, parent := rootKey, root
	if o.otherRoot {
		otherKey := mustECDSA(tb, elliptic.P256())
		otherTmpl := caTemplate(2, "Example Root", now) // same name: only the signature tells
		parent, signer = createCert(tb, otherTmpl, otherTmpl, otherKey.Public(), otherKey), otherKey
	}
	if o.rootNotSelf {
		topKey := mustECDSA(tb, elliptic.P256())
		topTmpl := caTemplate(3, "Top", now)
		top := createCert(tb, topTmpl, topTmpl, topKey.Public(), topKey)
		root = createCert(tb, rootTmpl, top, rootKey.Public(), topKey)
		parent = root
	}
	intKey := o.intKey
	if intKey == nil {
		intKey = mustECDSA(tb, elliptic.P256())
	}
	intTmpl := caTemplate(4, "Example Issuing CA", now)
	intTmpl.MaxPathLen, intTmpl.MaxPathLenZero = 0, true
	if o.intNotCA {
		intTmpl.IsCA, intTmpl.MaxPathLenZero = false, false
	}
	if o.intNoUsage {
		intTmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	intermediate := createCert(tb, intTmpl, parent, intKey.Public(), signer)

	keyPEM := o.keyPEM
	if keyPEM == nil {
		keyPEM = pkcs8PEM(tb)
	}
	fileKey := intKey
	if o.wrongKey {
		fileKey = mustECDSA(tb, elliptic.P256())
	}
	dir := tb.TempDir()
	files := ca.ImportFiles{
		Root:         filepath.Join(dir, "org-root.pem"),
		Intermediate: filepath.Join(dir, "org-int.pem"),
		Key:          filepath.Join(dir, "org-int.key"),
	}
	write := func(path string, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	write(files.Root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}))
	write(files.Intermediate, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: intermediate.Raw}))
	write(files.Key, keyPEM(fileKey))
	return importCA{files: files, root: root}
}

func TestImportKeyForms(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	tests := []struct {
		name string
		key  func(testing.TB) crypto.Signer
		pem  func(testing.TB) func(crypto.Signer) []byte
	}{
		{"P-256 PKCS#8", func(tb testing.TB) crypto.Signer { return mustECDSA(tb, elliptic.P256()) }, pkcs8PEM},
		{"P-256 SEC1", func(tb testing.TB) crypto.Signer { return mustECDSA(tb, elliptic.P256()) }, sec1PEM},
		{"P-384 PKCS#8", func(tb testing.TB) crypto.Signer { return mustECDSA(tb, elliptic.P384()) }, pkcs8PEM},
		{"P-384 SEC1", func(tb testing.TB) crypto.Signer { return mustECDSA(tb, elliptic.P384()) }, sec1PEM},
		{"RSA PKCS#8", mustRSA, pkcs8PEM},
		{"RSA PKCS#1", mustRSA, func(testing.TB) func(crypto.Signer) []byte { return pkcs1PEM }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeImportCA(t, epoch, importOpts{intKey: tt.key(t), keyPEM: tt.pem(t)})
			dir := filepath.Join(t.TempDir(), "data")
			if err := ca.Import(dir, src.files, cfg); err != nil {
				t.Fatalf("Import: %v", err)
			}
			fi, err := os.Stat(filepath.Join(dir, ca.IntermediateKeyFile))
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o600 {
				t.Errorf("%s mode %04o, want 0600", ca.IntermediateKeyFile, perm)
			}
			if _, err := os.Lstat(filepath.Join(dir, ca.RootKeyFile)); err == nil {
				t.Errorf("%s written; the root key stays with its owner", ca.RootKeyFile)
			}
			l, err := ca.Load(dir, cfg)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !l.Root().Equal(src.root) {
				t.Error("loaded root is not the imported one")
			}
			// The same CA again: ErrExists, which --exist-ok accepts.
			if err := ca.Import(dir, src.files, cfg); !errors.Is(err, ca.ErrExists) {
				t.Errorf("second Import: %v, want ErrExists", err)
			}
		})
	}
}

func TestImportRefusals(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	tests := []struct {
		name string
		opts importOpts
		edit func(t *testing.T, f *ca.ImportFiles)
		want []string // all in the error
	}{
		{name: "root missing", edit: func(t *testing.T, f *ca.ImportFiles) { f.Root += ".nope" }, want: []string{"org-root.pem.nope", "no such file"}},
		{name: "key missing", edit: func(t *testing.T, f *ca.ImportFiles) { f.Key += ".nope" }, want: []string{"org-int.key.nope", "no such file"}},
		{name: "intermediate not PEM", edit: func(t *testing.T, f *ca.ImportFiles) { writeFile(t, f.Intermediate, "hello") }, want: []string{"org-int.pem", "not a PEM file"}},
		{name: "key not PEM", edit: func(t *testing.T, f *ca.ImportFiles) { writeFile(t, f.Key, "hello") }, want: []string{"org-int.key", "not a PEM file"}},
		{name: "key is a certificate", edit: func(t *testing.T, f *ca.ImportFiles) { f.Key = f.Root }, want: []string{"org-root.pem", "not a private key"}},
		{name: "key does not match", opts: importOpts{wrongKey: true}, want: []string{"org-int.key", "does not match", "org-int.pem"}},
		{name: "intermediate not a CA", opts: importOpts{intNotCA: true}, want: []string{"org-int.pem", "cannot sign certificates", "BasicConstraints"}},
		{name: "intermediate lacks certSign", opts: importOpts{intNoUsage: true}, want: []string{"org-int.pem", "cannot sign certificates", "certSign"}},
		{name: "chain does not verify", opts: importOpts{otherRoot: true}, want: []string{"org-int.pem", "does not verify to root", "org-root.pem"}},
		{name: "root not self-signed", opts: importOpts{rootNotSelf: true}, want: []string{"org-root.pem", "not self-signed"}},
		{name: "root is the intermediate", edit: func(t *testing.T, f *ca.ImportFiles) { f.Root = f.Intermediate }, want: []string{"org-int.pem", "not self-signed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := writeImportCA(t, epoch, tt.opts)
			if tt.edit != nil {
				tt.edit(t, &src.files)
			}
			dir := filepath.Join(t.TempDir(), "data")
			err := ca.Import(dir, src.files, cfg)
			if err == nil {
				t.Fatal("Import succeeded")
			}
			checkOneLine(t, err, tt.want)
			if _, serr := os.Stat(dir); serr == nil {
				t.Errorf("Import created %s though it refused", dir)
			}
		})
	}
}

func TestImportIntoExistingCA(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	src := writeImportCA(t, epoch, importOpts{})
	dir := filepath.Join(t.TempDir(), "data")
	if err := ca.Init(dir, cfg); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ca.RootCertFile))
	err := ca.Import(dir, src.files, cfg)
	if err == nil || errors.Is(err, ca.ErrExists) {
		t.Fatalf("Import over another CA: %v, want a refusal --exist-ok does not accept", err)
	}
	checkOneLine(t, err, []string{dir, "already holds a different CA"})
	after, _ := os.ReadFile(filepath.Join(dir, ca.RootCertFile))
	if string(before) != string(after) {
		t.Error("the existing root.pem changed")
	}
}

func checkOneLine(t *testing.T, err error, want []string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		t.Errorf("error spans lines: %q", msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q lacks %q", msg, w)
		}
	}
}

func writeFile(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
