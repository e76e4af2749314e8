package integration

import (
	"context"
	"encoding/pem"
	"errors"
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

// offlineRoot is an external root made and used by openssl alone, as an
// organisation's offline root would be: acmed never sees its key.
type offlineRoot struct {
	dir, cert, key string
}

// openssl runs openssl in dir and returns its output, failing the test
// if it fails.
func openssl(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newOfflineRoot(t *testing.T) offlineRoot {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Skipf("openssl not installed: %v", err)
	}
	r := offlineRoot{dir: t.TempDir()}
	r.cert, r.key = filepath.Join(r.dir, "root.pem"), filepath.Join(r.dir, "root.key")
	openssl(t, r.dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
		"-keyout", r.key, "-out", r.cert, "-days", "3650", "-subj", "/O=Example Org/CN=Example Offline Root",
		"-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return r
}

// sign has the root sign csr as an intermediate CA, with the extensions
// an organisation's root would give it, and returns the certificate file.
func (r offlineRoot) sign(t *testing.T, csr string) string {
	t.Helper()
	ext := filepath.Join(r.dir, "intermediate.ext")
	body := "basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n" +
		"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n"
	if err := os.WriteFile(ext, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(r.dir, "intermediate.pem")
	openssl(t, r.dir, "x509", "-req", "-in", csr, "-CA", r.cert, "-CAkey", r.key, "-CAcreateserial",
		"-days", "1825", "-sha384", "-extfile", ext, "-out", out)
	return out
}

// offlineRootFlow is the offline-root flow with the real binary:
// acmed init --intermediate-csr, openssl x509 -req as the external root,
// acmed init --intermediate-cert --import-root, then serve and issue; the
// chain acmed serves verifies with openssl verify to the external root.
// backend is the --ca-backend flags (none for the file backend); absent
// names the files --data must not hold.
func offlineRootFlow(t *testing.T, backend []string, absent ...string) {
	root := newOfflineRoot(t)
	data := filepath.Join(t.TempDir(), "data")
	csr := filepath.Join(t.TempDir(), "intermediate.csr")
	acmed := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(acmedBinary, append(args, backend...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("acmed %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	t.Log(acmed("init", "--data", data, "--intermediate-csr", csr))
	if ca.Exists(data) {
		t.Fatal("--intermediate-csr left a CA in --data before the root signed")
	}
	openssl(t, root.dir, "req", "-in", csr, "-verify", "-noout")
	intCert := root.sign(t, csr)
	t.Log(acmed("init", "--data", data, "--intermediate-cert", intCert, "--import-root", root.cert))
	for _, f := range absent {
		if _, err := os.Stat(filepath.Join(data, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s in --data (stat: %v)", f, err)
		}
	}

	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, backend...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	der, _ := issue(t, ctx, newAccount(t, ctx, s), h, "offline.example")
	verifyChain(t, s, der, "offline.example")

	// openssl, trusting the external root alone, verifies the leaf through
	// the intermediate acmed served with it.
	dir := t.TempDir()
	write := func(name string, ders ...[]byte) string {
		var b []byte
		for _, d := range ders {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: d})...)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf, chain := write("leaf.pem", der[0]), write("chain.pem", der[1:]...)
	out := openssl(t, dir, "verify", "-CAfile", root.cert, "-untrusted", chain, "-verify_hostname", "offline.example", leaf)
	if !strings.Contains(out, ": OK") {
		t.Fatalf("openssl verify: %s", out)
	}
	s.Stop()
}

// TestOfflineRootFlowFile: the offline-root flow with the file backend;
// --data ends with the intermediate's key and never a root key.
func TestOfflineRootFlowFile(t *testing.T) {
	offlineRootFlow(t, nil, ca.RootKeyFile)
}
