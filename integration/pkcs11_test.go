//go:build cgo

package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/softhsmtest"
	"github.com/acmed/acmed/challenges/challengetest"
)

// softHSMFlags gives the test a fresh SoftHSM2 token (softhsmtest: its own
// SOFTHSM2_CONF, inherited by the acmed it starts) and returns the
// --ca-backend pkcs11 flags for it.
func softHSMFlags(t *testing.T) []string {
	t.Helper()
	_, flags := softHSMToken(t)
	return flags
}

// softHSMToken is softHSMFlags that also returns the token.
func softHSMToken(t *testing.T) (softhsmtest.Token, []string) {
	t.Helper()
	tok := softhsmtest.New(t)
	return tok, []string{"--ca-backend", "pkcs11", "--pkcs11-module", tok.Module,
		"--pkcs11-token-label", tok.Label, "--pkcs11-pin-file", tok.PINFile, "--pkcs11-key-label", "acmed-intermediate"}
}

// withFlag is flags with flag's value replaced by value.
func withFlag(flags []string, flag, value string) []string {
	out := append([]string(nil), flags...)
	for i := range out {
		if out[i] == flag {
			out[i+1] = value
		}
	}
	return out
}

// TestPKCS11CAIssues: acmed init --ca-backend pkcs11 generates the
// intermediate's key in a SoftHSM2 token and writes no key for it; acmed
// serve with the same flags issues through the token to x/crypto/acme,
// and the leaf chains to the root.
func TestPKCS11CAIssues(t *testing.T) {
	p11 := softHSMFlags(t)
	data := filepath.Join(t.TempDir(), "data")
	initArgs := append([]string{"init", "--data", data}, p11...)
	if out, err := exec.Command(acmedBinary, initArgs...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init --ca-backend pkcs11: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, ca.IntermediateKeyFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("init wrote %s with a token key (stat: %v)", ca.IntermediateKeyFile, err)
	}
	intPEM, err := os.ReadFile(filepath.Join(data, ca.IntermediateCertFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(intPEM)
	if block == nil {
		t.Fatalf("%s holds no PEM", ca.IntermediateCertFile)
	}
	intermediate, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	args := append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, p11...)
	s := startAcmed(t, data, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newAccount(t, ctx, s)
	der, _ := issue(t, ctx, c, h, "hsm.example")
	leaf := verifyChain(t, s, der, "hsm.example")
	if err := leaf.CheckSignatureFrom(intermediate); err != nil {
		t.Fatalf("leaf not signed by the token's intermediate: %v", err)
	}
	s.Stop()
}

// TestPKCS11Refused: serve and init stop with one line naming the flag.
func TestPKCS11Refused(t *testing.T) {
	p11 := softHSMFlags(t)
	data := filepath.Join(t.TempDir(), "data")
	with := func(flag, value string) []string { return withFlag(p11, flag, value) }
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"serve before init", append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, p11...), "serve never creates one with --ca-backend pkcs11"},
		{"missing key label flag", append([]string{"init", "--data", data}, with("--pkcs11-key-label", "")...), "--pkcs11-key-label: missing"},
		{"bad module", append([]string{"init", "--data", data}, with("--pkcs11-module", "/nonexistent/lib.so")...), "--pkcs11-module /nonexistent/lib.so"},
		{"unknown backend", []string{"init", "--data", data, "--ca-backend", "vaultish"}, `--ca-backend "vaultish"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(acmedBinary, tc.args...).CombinedOutput()
			msg := strings.TrimSpace(string(out))
			if err == nil || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("acmed %v: %v, output %q; want one line with %q and a non-zero exit", tc.args[0], err, msg, tc.want)
			}
		})
	}
}

// TestPKCS11ServeRefused: with a CA made by init, serve stops before it
// listens, with one line naming what is wrong and a non-zero exit, for
// each bad setting of the token: a wrong PIN, a token or key label the
// module does not have, a module that does not load, a PIN file others
// can read. init refuses --pkcs11-root-key-label where it cannot apply.
func TestPKCS11ServeRefused(t *testing.T) {
	tok, p11 := softHSMToken(t)
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, p11...)...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	pins := t.TempDir()
	pinFile := func(pin string, mode os.FileMode) string {
		p := filepath.Join(pins, pin+"-"+strconv.FormatUint(uint64(mode), 8))
		if err := os.WriteFile(p, []byte(pin+"\n"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return p
	}
	// A shared library that is not a PKCS#11 module: it loads, and has no
	// C_GetFunctionList.
	notModule := "/usr/lib/x86_64-linux-gnu/libz.so.1"
	if _, err := os.Stat(notModule); err != nil {
		notModule = tok.Dir + "/not-a-module.so" // dlopen refuses a text file
		if err := os.WriteFile(notModule, []byte("not ELF\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serve := func(flags []string) []string {
		return append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, flags...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong PIN", serve(withFlag(p11, "--pkcs11-pin-file", pinFile("9999", 0o600))), "CKR_PIN_INCORRECT"},
		{"PIN file open to others", serve(withFlag(p11, "--pkcs11-pin-file", pinFile("1234", 0o644))), "open to group or others (mode 0644)"},
		{"token label not on the module", serve(withFlag(p11, "--pkcs11-token-label", "nope")), `--pkcs11-token-label "nope"`},
		{"key label not on the token", serve(withFlag(p11, "--pkcs11-key-label", "nope")), `--pkcs11-key-label "nope": no key pair with this label on token "T"`},
		{"module missing", serve(withFlag(p11, "--pkcs11-module", "/nonexistent/libnope.so")), "--pkcs11-module /nonexistent/libnope.so"},
		{"not a PKCS#11 module", serve(withFlag(p11, "--pkcs11-module", notModule)), "--pkcs11-module " + notModule},
		{"root key label with the file backend", []string{"init", "--data", filepath.Join(t.TempDir(), "d"), "--pkcs11-root-key-label", "r"}, "--pkcs11-root-key-label: only with --ca-backend pkcs11"},
		{"root key label = key label", append([]string{"init", "--data", filepath.Join(t.TempDir(), "d"), "--pkcs11-root-key-label", "acmed-intermediate"}, p11...), "the same label as --pkcs11-key-label"},
		{"root key label in the offline-root flow", append([]string{"init", "--data", filepath.Join(t.TempDir(), "d"), "--pkcs11-root-key-label", "r", "--intermediate-csr", filepath.Join(t.TempDir(), "csr")}, p11...), "--pkcs11-root-key-label: not with --intermediate-csr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(acmedBinary, tc.args...)
			out, err := cmd.CombinedOutput()
			msg := strings.TrimSpace(string(out))
			t.Log(msg)
			if err == nil || cmd.ProcessState.ExitCode() == 0 || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("acmed %s: %v, output %q; want one line with %q and a non-zero exit", tc.args[0], err, msg, tc.want)
			}
		})
	}
}

// TestPKCS11RootKeyInToken: acmed init --pkcs11-root-key-label generates
// the root's key in the token as well (its attributes are checked in
// package ca): --data holds no key at all, root.pem is the token key's,
// and serve issues as usual.
func TestPKCS11RootKeyInToken(t *testing.T) {
	tok, p11 := softHSMToken(t)
	data := filepath.Join(t.TempDir(), "data")
	out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data, "--pkcs11-root-key-label", "acmed-root"}, p11...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("acmed init --pkcs11-root-key-label: %v: %s", err, out)
	}
	t.Logf("%s", out)
	for _, f := range []string{ca.RootKeyFile, ca.IntermediateKeyFile} {
		if _, err := os.Stat(filepath.Join(data, f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("init wrote %s with the key in the token (stat: %v)", f, err)
		}
	}
	rootKey, err := ca.OpenPKCS11(ca.PKCS11Config{Module: tok.Module, TokenLabel: tok.Label, PINFile: tok.PINFile, KeyLabel: "acmed-root"})
	if err != nil {
		t.Fatalf("the root's key on the token: %v", err)
	}
	pub := rootKey.Public()
	_ = rootKey.Close()
	root := readPEMCert(t, filepath.Join(data, ca.RootCertFile))
	if p, ok := root.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !p.Equal(pub) {
		t.Fatal("root.pem is not the certificate of the token's root key")
	}

	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port)}, p11...)...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	der, _ := issue(t, ctx, newAccount(t, ctx, s), h, "root-in-hsm.example")
	verifyChain(t, s, der, "root-in-hsm.example")
	s.Stop()
}

// TestOfflineRootFlowPKCS11: the offline-root flow with the intermediate's
// key in the token: --data never holds a private key.
func TestOfflineRootFlowPKCS11(t *testing.T) {
	offlineRootFlow(t, softHSMFlags(t), ca.RootKeyFile, ca.IntermediateKeyFile)
}

// TestPKCS11TokenOutage: the token disappears while acmed serves (its
// files are moved out of SoftHSM2's token directory, as a removed or
// unreachable HSM would vanish): the finalize that needs a signature gets
// 503 with Retry-After and the order stays ready, acmed keeps serving;
// once the token is back, the same order's next finalize succeeds through
// a session acmed opened afresh.
func TestPKCS11TokenOutage(t *testing.T) {
	tok, p11 := softHSMToken(t)
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, p11...)...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--ocsp"}, p11...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newAccount(t, ctx, s)
	der, _ := issue(t, ctx, c, h, "before.example")
	before := verifyChain(t, s, der, "before.example")
	intermediate := readPEMCert(t, filepath.Join(data, ca.IntermediateCertFile))

	// An order made ready while the token is there.
	const name = "outage.example"
	o, csr := readyOrder(t, ctx, c, h, name)

	// The token goes away.
	tokens := filepath.Join(tok.Dir, "tokens")
	away := filepath.Join(tok.Dir, "away")
	if err := os.Rename(tokens, away); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}

	// x/crypto/acme retries a 503 on its own: here the first one is kept
	// and ends the call, so that the test sees it.
	var status int
	var retryAfter string
	c.RetryBackoff = func(n int, r *http.Request, resp *http.Response) time.Duration {
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable {
			status, retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			return -1
		}
		return 100 * time.Millisecond
	}
	// Twice: the first signature fails in the session acmed had, the
	// second in acmed's attempt to open a new one.
	for i := range 2 {
		status, retryAfter = 0, ""
		if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true); err == nil {
			t.Fatalf("finalize %d succeeded without the token", i+1)
		}
		if status != http.StatusServiceUnavailable || retryAfter == "" {
			t.Fatalf("finalize %d without the token: status %d, Retry-After %q; want 503 with Retry-After", i+1, status, retryAfter)
		}
		if got, err := c.GetOrder(ctx, o.URI); err != nil || got.Status != acme.StatusReady {
			t.Fatalf("order after refused finalize %d: %v, %+v; want it ready", i+1, err, got)
		}
	}
	for _, l := range strings.Split(s.ReadLog(), "\n") {
		if strings.Contains(l, "signer unavailable") {
			t.Log(l)
		}
	}
	if !strings.Contains(s.ReadLog(), `msg="CA signer unavailable"`) {
		t.Error("acmed's log does not say the signer was unavailable")
	}

	// OCSP, signed by the CA's key in the token, answers tryLater.
	if status := ocspStatus(t, s, before, intermediate); status != ocsp.TryLater {
		t.Errorf("OCSP without the token: response status %v, want tryLater", status)
	}

	// The token is back: the next finalize of the same order succeeds.
	if err := os.Remove(tokens); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(away, tokens); err != nil {
		t.Fatal(err)
	}
	c.RetryBackoff = nil
	der, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("finalize once the token is back: %v", err)
	}
	verifyChain(t, s, der, name)
	if status := ocspStatus(t, s, before, intermediate); status != ocsp.Success {
		t.Errorf("OCSP once the token is back: response status %v, want success", status)
	}
	select {
	case <-s.Done():
		t.Fatal("acmed exited")
	default:
	}
	s.Stop()
}

// ocspStatus POSTs an OCSP request for leaf to the responder it names and
// returns the response's status; a successful one must say good and be
// signed by issuer.
func ocspStatus(t *testing.T, s *server, leaf, issuer *x509.Certificate) ocsp.ResponseStatus {
	t.Helper()
	if len(leaf.OCSPServer) != 1 {
		t.Fatalf("OCSP servers %q, want one", leaf.OCSPServer)
	}
	req, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.httpClient().Post(leaf.OCSPServer[0], "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	var re ocsp.ResponseError
	if errors.As(err, &re) {
		return re.Status
	}
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	if r.Status != ocsp.Good {
		t.Errorf("OCSP: certificate status %d, want good", r.Status)
	}
	return ocsp.Success
}
