//go:build cgo

package integration

import (
	"context"
	"crypto/x509"
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
	"github.com/acmed/acmed/ca/softhsmtest"
	"github.com/acmed/acmed/challenges/challengetest"
)

// softHSMFlags gives the test a fresh SoftHSM2 token (softhsmtest: its own
// SOFTHSM2_CONF, inherited by the acmed it starts) and returns the
// --ca-backend pkcs11 flags for it.
func softHSMFlags(t *testing.T) []string {
	t.Helper()
	tok := softhsmtest.New(t)
	return []string{"--ca-backend", "pkcs11", "--pkcs11-module", tok.Module,
		"--pkcs11-token-label", tok.Label, "--pkcs11-pin-file", tok.PINFile, "--pkcs11-key-label", "acmed-intermediate"}
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
	with := func(flag, value string) []string {
		out := append([]string(nil), p11...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
			}
		}
		return out
	}
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
