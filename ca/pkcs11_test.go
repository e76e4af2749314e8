//go:build cgo

package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ThalesGroup/crypto11"
	"github.com/miekg/pkcs11"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/softhsmtest"
)

// softHSM gives the test a fresh SoftHSM2 token (softhsmtest) and the
// backend configuration for it.
func softHSM(t *testing.T) ca.PKCS11Config {
	t.Helper()
	tok := softhsmtest.New(t)
	return ca.PKCS11Config{
		Module:     tok.Module,
		TokenLabel: tok.Label,
		PINFile:    tok.PINFile,
		KeyLabel:   "acmed-intermediate",
	}
}

func writePIN(t *testing.T, dir, pin string, mode os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, "pin-"+pin)
	if err := os.WriteFile(path, []byte(pin+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return path
}

func openToken(t *testing.T, cfg ca.PKCS11Config) *ca.TokenSigner {
	t.Helper()
	s, err := ca.OpenPKCS11(cfg)
	if err != nil {
		t.Fatalf("OpenPKCS11: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestInitPKCS11KeyStaysInToken(t *testing.T) {
	cfg := softHSM(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.InitPKCS11(dir, ca.Config{}, cfg); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	for _, f := range []string{ca.RootCertFile, ca.RootKeyFile, ca.IntermediateCertFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ca.IntermediateKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s written with a token key (stat: %v)", ca.IntermediateKeyFile, err)
	}

	checkTokenKey(t, cfg, cfg.KeyLabel, elliptic.P256())

	// A leaf signed through the token verifies against the intermediate.
	l, err := ca.LoadWithSigner(dir, ca.Config{}, openToken(t, cfg), "token key")
	if err != nil {
		t.Fatalf("LoadWithSigner: %v", err)
	}
	if pub, ok := l.Intermediate().PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Errorf("intermediate key %T, want ECDSA P-256", l.Intermediate().PublicKey)
	}
	issued, err := l.Sign(context.Background(), validRequest(ecKey(t, elliptic.P256())))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(l.Intermediate())
	if _, err := issued.Leaf.Verify(x509.VerifyOptions{Roots: rootPool(l), Intermediates: inter, CurrentTime: epoch.Add(2 * time.Hour)}); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}

	// A second init with the same label on the token is refused.
	err = ca.InitPKCS11(filepath.Join(t.TempDir(), "ca2"), ca.Config{}, cfg)
	if err == nil || !strings.Contains(err.Error(), "already holds a key pair") {
		t.Errorf("second InitPKCS11 = %v, want the label refused", err)
	}
}

// checkTokenKey reads the attributes of the key pair labelled label back
// through PKCS#11 (a tool refusing to export the key would prove nothing):
// an EC key on curve, sensitive, not extractable, generated on the token.
// It returns the key's public half.
func checkTokenKey(t *testing.T, cfg ca.PKCS11Config, label string, curve elliptic.Curve) crypto.PublicKey {
	t.Helper()
	c11, err := crypto11.Configure(&crypto11.Config{Path: cfg.Module, TokenLabel: cfg.TokenLabel, Pin: "1234"})
	if err != nil {
		t.Fatal(err)
	}
	defer c11.Close()
	key, err := c11.FindKeyPair(nil, []byte(label))
	if err != nil || key == nil {
		t.Fatalf("FindKeyPair(%q): %v, %v", label, key, err)
	}
	attrs, err := c11.GetAttributes(key, []crypto11.AttributeType{crypto11.CkaSensitive, crypto11.CkaExtractable, crypto11.CkaLocal, crypto11.CkaKeyType})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name string
		t    crypto11.AttributeType
		v    bool
	}{
		{"CKA_SENSITIVE", crypto11.CkaSensitive, true},
		{"CKA_EXTRACTABLE", crypto11.CkaExtractable, false},
		{"CKA_LOCAL", crypto11.CkaLocal, true},
	} {
		a := attrs[want.t]
		if a == nil || len(a.Value) != 1 || (a.Value[0] != 0) != want.v {
			t.Errorf("%s: %s = %v, want %v", label, want.name, a, want.v)
		}
	}
	if kt := attrs[crypto11.CkaKeyType]; kt == nil || len(kt.Value) == 0 || kt.Value[0] != byte(pkcs11.CKK_EC) {
		t.Errorf("%s: CKA_KEY_TYPE = %v, want CKK_EC", label, kt)
	}
	pub, ok := key.Public().(*ecdsa.PublicKey)
	if !ok || pub.Curve != curve {
		t.Errorf("%s: public key %T, want ECDSA %s", label, key.Public(), curve.Params().Name)
	}
	return key.Public()
}

// With --pkcs11-root-key-label the root's key is generated in the token
// too, with the intermediate's attributes, and --data holds no key at all.
func TestInitPKCS11RootKeyInToken(t *testing.T) {
	cfg := softHSM(t)
	cfg.RootKeyLabel = "acmed-root"
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.InitPKCS11(dir, ca.Config{}, cfg); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	for _, f := range []string{ca.RootKeyFile, ca.IntermediateKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s written with the key in the token (stat: %v)", f, err)
		}
	}
	rootPub := checkTokenKey(t, cfg, cfg.RootKeyLabel, elliptic.P384())
	checkTokenKey(t, cfg, cfg.KeyLabel, elliptic.P256())

	l, err := ca.LoadWithSigner(dir, ca.Config{}, openToken(t, cfg), "token key")
	if err != nil {
		t.Fatalf("LoadWithSigner: %v", err)
	}
	root := l.Root()
	if p, ok := root.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(rootPub) {
		t.Fatal("root.pem is not for the token's root key")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root not self-signed by the token's root key: %v", err)
	}
	if err := l.Intermediate().CheckSignatureFrom(root); err != nil {
		t.Errorf("intermediate not signed by the token's root key: %v", err)
	}
	issued, err := l.Sign(context.Background(), validRequest(ecKey(t, elliptic.P256())))
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	inter := x509.NewCertPool()
	inter.AddCert(l.Intermediate())
	if _, err := issued.Leaf.Verify(x509.VerifyOptions{Roots: rootPool(l), Intermediates: inter, CurrentTime: epoch.Add(2 * time.Hour)}); err != nil {
		t.Errorf("leaf does not verify: %v", err)
	}
}

// A root label the token already holds, or the intermediate's own label,
// is refused; a failed init deletes the keys it generated.
func TestInitPKCS11RootKeyRefused(t *testing.T) {
	cfg := softHSM(t)
	cfg.RootKeyLabel = "acmed-root"
	if err := ca.InitPKCS11(filepath.Join(t.TempDir(), "ca"), ca.Config{}, cfg); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	for _, tc := range []struct {
		name       string
		root, key  string
		want       string
		notOnToken string // a label the failed init must not leave behind
	}{
		{"root label taken", "acmed-root", "acmed-intermediate-2", `--pkcs11-root-key-label "acmed-root": token "T" already holds`, ""},
		{"intermediate label taken", "acmed-root-2", "acmed-intermediate", `--pkcs11-key-label "acmed-intermediate": token "T" already holds`, "acmed-root-2"},
		{"same label", "acmed-x", "acmed-x", "the same label as --pkcs11-key-label", "acmed-x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.RootKeyLabel, c.KeyLabel = tc.root, tc.key
			dir := filepath.Join(t.TempDir(), "ca")
			err := ca.InitPKCS11(dir, ca.Config{}, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("InitPKCS11 = %v, want one line containing %q", err, tc.want)
			}
			if ca.Exists(dir) {
				t.Error("a refused init left a CA")
			}
			if tc.notOnToken != "" {
				c.KeyLabel = tc.notOnToken
				if s, err := ca.OpenPKCS11(c); err == nil {
					_ = s.Close()
					t.Errorf("the refused init left key %q on the token", tc.notOnToken)
				}
			}
		})
	}
}

// Each misconfiguration is one line naming what is wrong.
func TestPKCS11Refusals(t *testing.T) {
	good := softHSM(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.InitPKCS11(dir, ca.Config{}, good); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	pins := t.TempDir()
	for _, tc := range []struct {
		name string
		edit func(*ca.PKCS11Config)
		want string
	}{
		{"wrong PIN", func(c *ca.PKCS11Config) { c.PINFile = writePIN(t, pins, "9999", 0o600) }, "CKR_PIN_INCORRECT"},
		{"missing token", func(c *ca.PKCS11Config) { c.TokenLabel = "nope" }, `--pkcs11-token-label "nope"`},
		{"missing key", func(c *ca.PKCS11Config) { c.KeyLabel = "nope" }, `--pkcs11-key-label "nope": no key pair`},
		{"bad module", func(c *ca.PKCS11Config) { c.Module = "/nonexistent/libnope.so" }, "--pkcs11-module /nonexistent/libnope.so"},
		{"PIN file 0644", func(c *ca.PKCS11Config) { c.PINFile = writePIN(t, pins, "1234", 0o644) }, "open to group or others (mode 0644)"},
		{"PIN file missing", func(c *ca.PKCS11Config) { c.PINFile = filepath.Join(pins, "absent") }, "--pkcs11-pin-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			s, err := ca.OpenPKCS11(cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("OpenPKCS11 succeeded")
			}
			msg := err.Error()
			t.Log(msg)
			if !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Errorf("error %q, want one line containing %q", msg, tc.want)
			}
		})
	}
}

// A token that fails a signature (here: logged out behind acmed's back)
// gives ErrUnavailable, and the next signature opens a fresh session.
func TestTokenSignerReopens(t *testing.T) {
	cfg := softHSM(t)
	dir := filepath.Join(t.TempDir(), "ca")
	if err := ca.InitPKCS11(dir, ca.Config{}, cfg); err != nil {
		t.Fatalf("InitPKCS11: %v", err)
	}
	l, err := ca.LoadWithSigner(dir, ca.Config{}, openToken(t, cfg), "token key")
	if err != nil {
		t.Fatalf("LoadWithSigner: %v", err)
	}
	req := validRequest(ecKey(t, elliptic.P256()))
	if _, err := l.Sign(context.Background(), req); err != nil {
		t.Fatalf("first Sign: %v", err)
	}
	logOut(t, cfg)
	if _, err := l.Sign(context.Background(), req); !errors.Is(err, ca.ErrUnavailable) {
		t.Fatalf("Sign after logout = %v, want ErrUnavailable", err)
	}
	if _, err := l.Sign(context.Background(), req); err != nil {
		t.Fatalf("Sign after re-open: %v", err)
	}
}

// logOut logs the application out of the token through a second handle on
// the already-initialised module: login state is per application, so every
// session crypto11 holds loses it.
func logOut(t *testing.T, cfg ca.PKCS11Config) {
	t.Helper()
	p := pkcs11.New(cfg.Module)
	if p == nil {
		t.Fatal("pkcs11.New failed")
	}
	// Already initialised by crypto11 in this process; that is expected.
	if err := p.Initialize(); err != nil && !errors.Is(err, pkcs11.Error(pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, slot := range slots {
		ti, err := p.GetTokenInfo(slot)
		if err != nil || ti.Label != cfg.TokenLabel {
			continue
		}
		sh, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Logout(sh); err != nil {
			t.Fatalf("C_Logout: %v", err)
		}
		_ = p.CloseSession(sh)
		return
	}
	t.Fatalf("token %q not found", cfg.TokenLabel)
}
