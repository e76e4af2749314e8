package ca_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

var caFiles = []string{ca.RootCertFile, ca.RootKeyFile, ca.IntermediateCertFile, ca.IntermediateKeyFile}

func TestInitLoadRoundTrip(t *testing.T) {
	l, dir := newCA(t, ca.Config{})

	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode %o, want 700", got)
	}
	if !ca.Exists(dir) {
		t.Error("Exists after Init = false")
	}

	root := l.Root()
	if !root.IsCA || !root.BasicConstraintsValid {
		t.Error("root is not a CA")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		t.Errorf("root is not self-signed: %v", err)
	}
	if !strings.HasPrefix(root.Subject.CommonName, "acmed root CA ") || !slices.Equal(root.Subject.Organization, []string{"acmed"}) {
		t.Errorf("root subject %q", root.Subject)
	}
	if k, ok := root.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P384() {
		t.Errorf("root key %T, want ECDSA P-384", root.PublicKey)
	}
	if got := parsePEMCerts(t, l.RootPEM()); len(got) != 1 || !got[0].Equal(root) {
		t.Error("RootPEM does not hold Root")
	}

	inter := readCertFile(t, filepath.Join(dir, ca.IntermediateCertFile))
	if !inter.IsCA || inter.MaxPathLen != 0 || !inter.MaxPathLenZero {
		t.Errorf("intermediate IsCA=%v MaxPathLen=%d MaxPathLenZero=%v", inter.IsCA, inter.MaxPathLen, inter.MaxPathLenZero)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; inter.KeyUsage != want {
		t.Errorf("intermediate KeyUsage %v, want %v", inter.KeyUsage, want)
	}
	if !strings.HasPrefix(inter.Subject.CommonName, "acmed intermediate CA ") {
		t.Errorf("intermediate subject %q", inter.Subject)
	}
	if k, ok := inter.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("intermediate key %T, want ECDSA P-256", inter.PublicKey)
	}
	if !bytes.Equal(inter.AuthorityKeyId, root.SubjectKeyId) || len(inter.SubjectKeyId) == 0 {
		t.Error("intermediate key identifiers do not link to the root")
	}
	if _, err := inter.Verify(x509.VerifyOptions{Roots: rootPool(l)}); err != nil {
		t.Errorf("intermediate does not verify against root: %v", err)
	}
}

func TestInitDistinctNames(t *testing.T) {
	a, _ := newCA(t, ca.Config{})
	b, _ := newCA(t, ca.Config{})
	if a.Root().Subject.CommonName == b.Root().Subject.CommonName {
		t.Errorf("two CAs share the root name %q", a.Root().Subject.CommonName)
	}
}

func TestInitFixedNow(t *testing.T) {
	cfg := ca.Config{Now: fixedNow(epoch)}
	_, dir := newCA(t, cfg)

	tests := []struct {
		file      string
		notBefore time.Time
		notAfter  time.Time
	}{
		{ca.RootCertFile, epoch.Add(-time.Hour), epoch.AddDate(10, 0, 0)},
		{ca.IntermediateCertFile, epoch.Add(-time.Hour), epoch.AddDate(5, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c := readCertFile(t, filepath.Join(dir, tt.file))
			if !c.NotBefore.Equal(tt.notBefore) || !c.NotAfter.Equal(tt.notAfter) {
				t.Errorf("validity %v..%v, want %v..%v", c.NotBefore, c.NotAfter, tt.notBefore, tt.notAfter)
			}
		})
	}
}

func TestInitTwiceKeepsFirstCA(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	before := snapshot(t, dir)

	err := ca.Init(dir, ca.Config{})
	if !errors.Is(err, ca.ErrExists) {
		t.Fatalf("second Init: %v, want ErrExists", err)
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, ca.RootCertFile)) {
		t.Errorf("error %q does not name root.pem", err)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("second Init changed the directory:\nbefore %v\nafter  %v", slices.Sorted(maps.Keys(before)), slices.Sorted(maps.Keys(after)))
	}
}

// A key left by an interrupted Init must not be replaced: the guard is on
// every file, not only root.pem.
func TestInitDoesNotOverwriteStrayKey(t *testing.T) {
	dir := t.TempDir()
	stray := []byte("not ours to replace")
	if err := os.WriteFile(filepath.Join(dir, ca.IntermediateKeyFile), stray, 0o600); err != nil {
		t.Fatal(err)
	}

	err := ca.Init(dir, ca.Config{})
	if !errors.Is(err, ca.ErrExists) {
		t.Fatalf("Init: %v, want ErrExists", err)
	}
	got := snapshot(t, dir)
	want := map[string]string{ca.IntermediateKeyFile: string(stray)}
	if !maps.Equal(got, want) {
		t.Errorf("directory after failed Init holds %v, want only the stray key", slices.Sorted(maps.Keys(got)))
	}
	if ca.Exists(dir) {
		t.Error("Exists after failed Init = true")
	}
}

func TestInitBadRandWritesNothing(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
	}{
		{"zeros", zeroReader{}},
		{"failing", failingReader{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ca")
			if err := ca.Init(dir, ca.Config{Rand: tt.r}); err == nil {
				t.Fatal("Init succeeded with a broken random source")
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Init left %s behind (stat: %v)", dir, err)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	tests := []struct {
		file string
		mode fs.FileMode
	}{
		{ca.RootKeyFile, 0o600},
		{ca.IntermediateKeyFile, 0o600},
		{ca.RootCertFile, 0o644},
		{ca.IntermediateCertFile, 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fi, err := os.Stat(filepath.Join(dir, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != tt.mode {
				t.Errorf("mode %o, want %o", got, tt.mode)
			}
		})
	}
}

func TestKeysArePKCS8(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	for _, f := range []string{ca.RootKeyFile, ca.IntermediateKeyFile} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("-----BEGIN PRIVATE KEY-----\n")) {
			t.Errorf("%s is not a PKCS#8 PEM key", f)
		}
	}
}

func TestExistsEmptyDir(t *testing.T) {
	if ca.Exists(t.TempDir()) {
		t.Error("Exists on an empty directory = true")
	}
	if ca.Exists(filepath.Join(t.TempDir(), "missing")) {
		t.Error("Exists on a missing directory = true")
	}
}

func TestLoadErrors(t *testing.T) {
	_, other := newCA(t, ca.Config{})
	copyFrom := func(files ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			for _, f := range files {
				b, err := os.ReadFile(filepath.Join(other, f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	remove := func(f string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	corrupt := func(f, content string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	certAsKey := func(t *testing.T, dir string) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, ca.IntermediateCertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ca.IntermediateKeyFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	badDER := "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
	badKey := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"

	tests := []struct {
		name     string
		damage   func(t *testing.T, dir string)
		file     string // must appear in the error
		want     string // must also appear in the error
		notExist bool
	}{
		{"missing root", remove(ca.RootCertFile), ca.RootCertFile, "ca: read ", true},
		{"missing intermediate", remove(ca.IntermediateCertFile), ca.IntermediateCertFile, "ca: read ", true},
		{"missing key", remove(ca.IntermediateKeyFile), ca.IntermediateKeyFile, "ca: read ", true},
		{"root not PEM", corrupt(ca.RootCertFile, "garbage"), ca.RootCertFile, "no CERTIFICATE PEM block", false},
		{"root bad DER", corrupt(ca.RootCertFile, badDER), ca.RootCertFile, "ca: parse ", false},
		{"intermediate not PEM", corrupt(ca.IntermediateCertFile, ""), ca.IntermediateCertFile, "no CERTIFICATE PEM block", false},
		{"key not PEM", corrupt(ca.IntermediateKeyFile, "garbage"), ca.IntermediateKeyFile, "PRIVATE KEY", false},
		{"key bad DER", corrupt(ca.IntermediateKeyFile, badKey), ca.IntermediateKeyFile, "ca: parse ", false},
		{"key is a certificate", certAsKey, ca.IntermediateKeyFile, "PRIVATE KEY", false},
		{"key of another CA", copyFrom(ca.IntermediateKeyFile), ca.IntermediateKeyFile, "does not match", false},
		{"intermediate of another CA", copyFrom(ca.IntermediateCertFile, ca.IntermediateKeyFile), ca.IntermediateCertFile, "is not signed by", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, dir := newCA(t, ca.Config{})
			tt.damage(t, dir)

			_, err := ca.Load(dir, ca.Config{})
			if err == nil {
				t.Fatal("Load succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(dir, tt.file)) || !strings.Contains(msg, tt.want) {
				t.Errorf("error %q does not name %s with %q", msg, tt.file, tt.want)
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error spans lines: %q", msg)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != tt.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", got, tt.notExist)
			}
		})
	}
}

func TestLoadMissingFileMessage(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	path := filepath.Join(dir, ca.IntermediateKeyFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := ca.Load(dir, ca.Config{})
	if want := "ca: read " + path + ": no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load error %q, want %q", err, want)
	}
}

// The root key is not needed to sign, so an operator may keep it offline.
func TestLoadWithoutRootKey(t *testing.T) {
	_, dir := newCA(t, ca.Config{})
	if err := os.Remove(filepath.Join(dir, ca.RootKeyFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := ca.Load(dir, ca.Config{}); err != nil {
		t.Errorf("Load without root.key: %v", err)
	}
}

func TestLoadExpiredIntermediate(t *testing.T) {
	_, dir := newCA(t, ca.Config{Now: fixedNow(epoch)})
	_, err := ca.Load(dir, ca.Config{Now: fixedNow(epoch.AddDate(5, 0, 1))})
	if err == nil || !strings.Contains(err.Error(), "expired") || !strings.Contains(err.Error(), ca.IntermediateCertFile) {
		t.Errorf("Load after the intermediate expired: %v", err)
	}
}

// snapshot maps each file name in dir to its contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = string(b)
	}
	return m
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy unavailable") }

// TestLoadRefusesOpenModes: keys others may read and a directory others
// may write are refused with the chmod that fixes them. Mode bits are
// checked, not access: tests (and CI) may run as root, who reads anything.
func TestLoadRefusesOpenModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX mode bits")
	}
	for _, tc := range []struct {
		name string
		file string // "" for the directory
		mode os.FileMode
		want string // with the path appended
	}{
		{"intermediate key world-readable", ca.IntermediateKeyFile, 0o644, "chmod 600 "},
		{"intermediate key group-readable", ca.IntermediateKeyFile, 0o640, "chmod 600 "},
		{"intermediate key others-writable", ca.IntermediateKeyFile, 0o602, "chmod 600 "},
		{"root key world-readable", ca.RootKeyFile, 0o604, "chmod 600 "},
		{"directory world-writable", "", 0o777, "chmod go-w "},
		{"directory group-writable", "", 0o770, "chmod go-w "},
		{"directory sticky and world-writable", "", 0o1777, "chmod go-w "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, dir := newCA(t, ca.Config{})
			path := filepath.Join(dir, tc.file)
			if tc.file == "" {
				path = dir
			}
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })
			_, err := ca.Load(dir, ca.Config{})
			if err == nil || !strings.Contains(err.Error(), tc.want+path) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Load: %v; want one line with %q", err, tc.want+path)
			}
		})
	}
	t.Run("modes that are fine", func(t *testing.T) {
		_, dir := newCA(t, ca.Config{})
		for path, mode := range map[string]os.FileMode{
			dir: 0o755, filepath.Join(dir, ca.IntermediateKeyFile): 0o400, filepath.Join(dir, ca.RootKeyFile): 0o600,
		} {
			if err := os.Chmod(path, mode); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ca.Load(dir, ca.Config{}); err != nil {
			t.Fatalf("Load: %v", err)
		}
	})
}

func TestInitRefusesWritableDir(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX mode bits")
	}
	dir := filepath.Join(t.TempDir(), "ca")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	err := ca.Init(dir, ca.Config{})
	if err == nil || !strings.Contains(err.Error(), "chmod go-w "+dir) {
		t.Fatalf("Init: %v; want the chmod that fixes %s", err, dir)
	}
	if ca.Exists(dir) {
		t.Fatal("Init wrote a CA into a world-writable directory")
	}
}
