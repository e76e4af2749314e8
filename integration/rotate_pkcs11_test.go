//go:build cgo

package integration

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestPKCS11Rotate: with --ca-backend pkcs11, `acmed admin ca rotate`
// generates the new intermediate's key in the token (under
// --pkcs11-key-label-N, or --key-label), the store records only its
// label, and a second replica on the same token (one network HSM, here
// one SoftHSM2 token directory) finds it there and signs with it within
// its poll. A file key is refused.
func TestPKCS11Rotate(t *testing.T) {
	p11 := softHSMFlags(t)
	r := redistest.Start(t)
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, p11...)...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init --ca-backend pkcs11: %v: %s", err, out)
	}
	tokenFile := writeToken(t, 0o600)
	start := func() *server {
		return startAcmed(t, data, append([]string{"--store", r.URL, "--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port),
			"--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}, p11...)...)
	}
	a, b := start(), start()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var rotated adminIssuer
	rotatedAt := time.Now()
	adminJSON(t, a, tokenFile, &rotated, "ca", "rotate")
	if rotated.State != "active" || rotated.Key != `pkcs11 label "acmed-intermediate-2"` {
		t.Fatalf("ca rotate: %+v", rotated)
	}
	waitSwap(t, b, rotated.Name, rotatedAt) // B found the key in the token
	der, _ := issue(t, ctx, newAccount(t, ctx, a), h, "a.hsm-rotate.example")
	if got := ca.CRLName(mustParse(t, der[1])); got != rotated.Name {
		t.Fatalf("replica A signs with %s, want %s", got, rotated.Name)
	}
	onB := newAccount(t, ctx, b)
	for i, deadline := 0, time.Now().Add(30*time.Second); ; i++ {
		name := "b" + strconv.Itoa(i) + ".hsm-rotate.example"
		der, _ := issue(t, ctx, onB, h, name)
		if ca.CRLName(mustParse(t, der[1])) == rotated.Name {
			verifyChain(t, b, der, name)
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica B does not sign with the token's new key")
		}
	}

	var again adminIssuer
	adminJSON(t, b, tokenFile, &again, "ca", "rotate", "--key-label", "acmed-int-third")
	if again.Key != `pkcs11 label "acmed-int-third"` {
		t.Fatalf("ca rotate --key-label: %+v", again)
	}
	if _, stderr, err := adminCLI(t, a, tokenFile, "ca", "rotate", "--key-label", "acmed-int-third"); err == nil || !strings.Contains(stderr, "already holds a key pair with this label") {
		t.Fatalf("rotate to a label the token holds: %v %s", err, stderr)
	}
	dir := t.TempDir()
	root := readPEMCert(t, filepath.Join(data, ca.RootCertFile))
	cert, key := signIntermediate(t, dir, "file", root, readKeyFile(t, filepath.Join(data, ca.RootKeyFile)))
	if _, stderr, err := adminCLI(t, a, tokenFile, "ca", "rotate", "--cert", cert, "--key", key); err == nil || !strings.Contains(stderr, "--key: not with --ca-backend pkcs11") {
		t.Fatalf("a file key with pkcs11: %v %s", err, stderr)
	}
	var list struct {
		Issuers []adminIssuer `json:"issuers"`
	}
	adminJSON(t, a, tokenFile, &list, "ca", "list")
	if len(list.Issuers) != 3 || list.Issuers[2].State != "active" || list.Issuers[0].State != "retired" || list.Issuers[1].State != "retired" {
		t.Fatalf("ca list: %+v", list.Issuers)
	}

	// A rotation that fails after generating its key (no root key to
	// sign with) deletes it from the token: the label is free again.
	rootKey, away := filepath.Join(data, ca.RootKeyFile), filepath.Join(t.TempDir(), "root.key")
	if err := os.Rename(rootKey, away); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := adminCLI(t, a, tokenFile, "ca", "rotate", "--key-label", "acmed-int-retry"); err == nil || !strings.Contains(stderr, "no --pkcs11-root-key-label") {
		t.Fatalf("rotate without root.key: %v %s", err, stderr)
	}
	if err := os.Rename(away, rootKey); err != nil {
		t.Fatal(err)
	}
	adminJSON(t, a, tokenFile, &again, "ca", "rotate", "--key-label", "acmed-int-retry")
	if again.Key != `pkcs11 label "acmed-int-retry"` {
		t.Fatalf("rotate with the label a failed rotation used: %+v", again)
	}
}

// TestPKCS11RotateRootInToken: when init put the root's key in the token
// (--pkcs11-root-key-label), serve with the same flag signs a rotation's
// intermediate with it, there being no root.key; without the flag the
// rotation is refused in one line that says so.
func TestPKCS11RotateRootInToken(t *testing.T) {
	p11 := append(softHSMFlags(t), "--pkcs11-root-key-label", "acmed-root")
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, p11...)...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init --pkcs11-root-key-label: %v: %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(data, ca.RootKeyFile)); err == nil {
		t.Fatal("init wrote root.key with the root's key in the token")
	}
	tokenFile := writeToken(t, 0o600)
	common := []string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}
	without := startAcmed(t, data, append(common, p11[:len(p11)-2]...)...)
	if _, stderr, err := adminCLI(t, without, tokenFile, "ca", "rotate"); err == nil || !strings.Contains(stderr, "--pkcs11-root-key-label") ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("rotate with no root key at hand: %v %q", err, stderr)
	}
	without.Stop()

	s := startAcmed(t, data, append(common, p11...)...)
	var rotated adminIssuer
	adminJSON(t, s, tokenFile, &rotated, "ca", "rotate")
	if rotated.State != "active" || rotated.Key != `pkcs11 label "acmed-intermediate-2"` {
		t.Fatalf("ca rotate: %+v", rotated)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	der, _ := issue(t, ctx, newAccount(t, ctx, s), h, "root-in-token.example")
	if got := ca.CRLName(mustParse(t, der[1])); got != rotated.Name {
		t.Fatalf("signed by %s, want %s", got, rotated.Name)
	}
	verifyChain(t, s, der, "root-in-token.example")
}
