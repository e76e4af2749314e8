package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	acmed "github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// adminIssuer is an issuer as `acmed admin ca list --json` prints it.
type adminIssuer struct {
	Name        string    `json:"name"`
	State       string    `json:"state"`
	Subject     string    `json:"subject"`
	NotAfter    time.Time `json:"not_after"`
	Fingerprint string    `json:"sha256_fingerprint"`
	CRL         string    `json:"crl"`
	Key         string    `json:"key"`
	Loaded      bool      `json:"loaded"`
}

// TestRotateWhileServing: two replicas on one Redis, serving CRLs and
// OCSP. A certificate is issued; `acmed admin ca rotate` on replica A
// makes a new intermediate, with which A signs at once and replica B
// within its poll; the old certificate's revocation lands on the old
// intermediate's CRL (openssl crl -verify and verify -crl_check), OCSP
// answers for both intermediates (openssl ocsp), ARI knows the old
// certificate, and a replica started afterwards signs with the new one.
func TestRotateWhileServing(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	r := redistest.Start(t)
	dns, http01 := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	tokenFile := writeToken(t, 0o600)
	portA := freePort(t)
	external := "https://localhost:" + strconv.Itoa(portA)
	plain := "127.0.0.1:" + strconv.Itoa(freePort(t))
	start := func(port int, extra ...string) *server {
		return startAcmed(t, data, append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(port), "--external-url", external,
			"--store", r.URL, "--resolver", dns.Addr, "--http01-port", strconv.Itoa(http01.Port),
			"--crl-refresh", crlRefresh.String(), "--crl-validity", "1h", "--ocsp",
			"--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}, extra...)...)
	}
	a := start(portA, "--crl-listen", plain)
	b := start(freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	oldInter := readPEMCert(t, filepath.Join(data, ca.IntermediateCertFile))
	onA := newAccount(t, ctx, a)
	old, _ := issue(t, ctx, onA, http01, "old.rotate.example")
	oldGood, _ := issue(t, ctx, onA, http01, "old-good.rotate.example")
	mustIssuer(t, old, oldInter)

	var rotated adminIssuer
	rotatedAt := time.Now()
	adminJSON(t, a, tokenFile, &rotated, "ca", "rotate")
	if rotated.State != "active" || rotated.Name == ca.CRLName(oldInter) || rotated.Key != "store (wrapped)" || !rotated.Loaded {
		t.Fatalf("ca rotate: %+v", rotated)
	}
	var list struct {
		Issuers []adminIssuer `json:"issuers"`
	}
	adminJSON(t, b, tokenFile, &list, "ca", "list")
	if len(list.Issuers) != 2 || list.Issuers[0].Name != ca.CRLName(oldInter) || list.Issuers[0].State != "retired" ||
		list.Issuers[0].Key != "--data" || list.Issuers[1].Name != rotated.Name || list.Issuers[1].State != "active" ||
		list.Issuers[1].CRL != external+"/crl/"+rotated.Name+".crl" {
		t.Fatalf("ca list on replica B: %+v", list.Issuers)
	}
	if out, _, err := adminCLI(t, a, tokenFile, "ca", "list"); err != nil || !strings.Contains(out, rotated.Name) || !strings.Contains(out, "retired") {
		t.Fatalf("ca list (text): %v\n%s", err, out)
	}

	// A signs with the new intermediate from the next issuance on.
	fresh, _ := issue(t, ctx, onA, http01, "new.rotate.example")
	newInter, err := x509.ParseCertificate(fresh[1])
	if err != nil {
		t.Fatal(err)
	}
	if ca.CRLName(newInter) != rotated.Name {
		t.Fatalf("replica A signed with %s after the rotation, want %s", ca.CRLName(newInter), rotated.Name)
	}
	leaf := verifyChain(t, a, fresh, "new.rotate.example")
	if want := external + "/crl/" + rotated.Name + ".crl"; len(leaf.CRLDistributionPoints) != 1 || leaf.CRLDistributionPoints[0] != want {
		t.Fatalf("new certificate's CRL distribution points %q, want [%s]", leaf.CRLDistributionPoints, want)
	}

	// B follows within its poll of the store (5s): its log says when it
	// swapped its signer (an issuance on B proves little alone: another
	// replica's worker may run its job).
	waitSwap(t, b, rotated.Name, rotatedAt)
	onB := newAccount(t, ctx, b)
	deadline := rotatedAt.Add(30 * time.Second)
	for i := 0; ; i++ {
		der, _ := issue(t, ctx, onB, http01, "b"+strconv.Itoa(i)+".rotate.example")
		if ca.CRLName(mustParse(t, der[1])) == rotated.Name {
			verifyChain(t, b, der, "b"+strconv.Itoa(i)+".rotate.example")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica B still signs with the old intermediate")
		}
	}

	// The old certificate's revocation is on the old intermediate's CRL.
	if err := onA.RevokeCert(ctx, nil, old[0], acme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke the old certificate: %v", err)
	}
	oldLeaf := mustParse(t, old[0])
	oldPath := "/crl/" + ca.CRLName(oldInter) + ".crl"
	var der []byte
	for deadline := time.Now().Add(30 * time.Second); ; {
		der = getCRL(t, b.httpClient(), "http://"+plain+oldPath)
		if onCRL(parseCRL(t, der, oldInter), oldLeaf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the old certificate is not on the old intermediate's CRL")
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkIDP(t, parseCRL(t, der, oldInter), oldLeaf.CRLDistributionPoints[0])
	opensslCRLOf(t, data, pemOf(old[1]), der, oldGood[0], old[0])
	// The new intermediate has a CRL of its own, signed by it.
	newDER := getCRL(t, a.httpClient(), external+"/crl/"+rotated.Name+".crl")
	if onCRL(parseCRL(t, newDER, newInter), oldLeaf) {
		t.Fatal("the old certificate is on the new intermediate's CRL")
	}
	opensslCRLOf(t, data, pemOf(fresh[1]), newDER, fresh[0], nil)

	// OCSP answers for both intermediates.
	ocspCheck(t, ctx, data, pemOf(old[1]), old[0], "revoked")
	ocspCheck(t, ctx, data, pemOf(oldGood[1]), oldGood[0], "good")
	ocspCheck(t, ctx, data, pemOf(fresh[1]), fresh[0], "good")

	// ARI: the old certificate's certID names the old intermediate.
	ariStatus(t, a, oldLeaf, oldInter, http.StatusOK)
	ariStatus(t, a, leaf, newInter, http.StatusOK)

	// A replica started after the rotation signs with the new one.
	c := start(freePort(t))
	der2, _ := issue(t, ctx, newAccount(t, ctx, c), http01, "c.rotate.example")
	if got := ca.CRLName(mustParse(t, der2[1])); got != rotated.Name {
		t.Fatalf("a replica started after the rotation signs with %s, want %s", got, rotated.Name)
	}
	log := a.ReadLog()
	if !strings.Contains(log, "event=ca.rotate") || !strings.Contains(log, "issuer="+rotated.Name) {
		t.Errorf("no ca.rotate audit event in A's log:\n%s", log)
	}
	if out := log + b.ReadLog() + c.ReadLog(); strings.Contains(out, "level=ERROR") {
		t.Errorf("errors logged:\n%s", out)
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustIssuer(t *testing.T, chain [][]byte, want *x509.Certificate) {
	t.Helper()
	if got := mustParse(t, chain[1]); !got.Equal(want) {
		t.Fatalf("signed by %q, want %q", got.Subject, want.Subject)
	}
}

func pemOf(der []byte) [][]byte { return [][]byte{der} }

// opensslCRLOf: openssl verifies the CRL der against the intermediate
// inter and data's root, and with it accepts good and rejects bad (each
// skipped when nil).
func opensslCRLOf(t *testing.T, data string, inter [][]byte, der, good, bad []byte) {
	t.Helper()
	if der == nil {
		return
	}
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crlPEM, interPEM := write("crl.pem", "X509 CRL", der), write("inter.pem", "CERTIFICATE", inter[0])
	root := filepath.Join(data, ca.RootCertFile)
	chain := filepath.Join(dir, "chain.pem")
	if err := os.WriteFile(chain, append(must(os.ReadFile(interPEM)), must(os.ReadFile(root))...), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("crl", "-in", crlPEM, "-CAfile", chain, "-verify", "-noout"); err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	verify := func(cert []byte) (string, error) {
		return run("verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", root, "-untrusted", interPEM, write("leaf.pem", "CERTIFICATE", cert))
	}
	if good != nil {
		if out, err := verify(good); err != nil {
			t.Errorf("openssl verify -crl_check of the good certificate: %v\n%s", err, out)
		}
	}
	if bad != nil {
		if out, err := verify(bad); err == nil || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify -crl_check of the revoked certificate: %v, want \"certificate revoked\"\n%s", err, out)
		}
	}
}

// ocspCheck asks openssl ocsp about leaf, issued by inter, at the URL
// the certificate names, and wants status ("good", "revoked") and a
// response that verifies to data's root.
func ocspCheck(t *testing.T, ctx context.Context, data string, inter [][]byte, leafDER []byte, status string) {
	t.Helper()
	dir := t.TempDir()
	interFile, leafFile := filepath.Join(dir, "inter.pem"), filepath.Join(dir, "leaf.pem")
	for f, der := range map[string][]byte{interFile: inter[0], leafFile: leafDER} {
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	leaf := mustParse(t, leafDER)
	out, err := exec.CommandContext(ctx, "openssl", "ocsp", "-issuer", interFile, "-cert", leafFile, "-url", leaf.OCSPServer[0],
		"-CAfile", filepath.Join(data, ca.RootCertFile)).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl ocsp: %v\n%s", err, out)
	}
	for _, w := range []string{leafFile + ": " + status, "Response verify OK"} {
		if !strings.Contains(string(out), w) {
			t.Fatalf("openssl ocsp says\n%s\nwant %q", out, w)
		}
	}
}

// ariStatus GETs the renewal information of leaf, named by issuer's key
// identifier, and wants status.
func ariStatus(t *testing.T, s *server, leaf, issuer *x509.Certificate, status int) {
	t.Helper()
	resp, err := s.httpClient().Get(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	var dir struct {
		RenewalInfo string `json:"renewalInfo"`
	}
	err = json.NewDecoder(resp.Body).Decode(&dir)
	resp.Body.Close()
	if err != nil || dir.RenewalInfo == "" {
		t.Fatalf("directory: no renewalInfo (%v)", err)
	}
	id := acmed.CertID(issuer.SubjectKeyId, acmed.SerialHex(leaf.SerialNumber))
	resp, err = s.httpClient().Get(dir.RenewalInfo + "/" + id)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("renewalInfo of %s: HTTP %d, want %d", id, resp.StatusCode, status)
	}
}

// TestRotateBadInput: what an operator may get wrong is one line and
// exit 1, and changes nothing; an intermediate signed elsewhere (the root
// offline) is installed.
func TestRotateBadInput(t *testing.T) {
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	// The root goes offline: its key leaves --data.
	offline := filepath.Join(t.TempDir(), "root.key")
	if err := os.Rename(filepath.Join(data, ca.RootKeyFile), offline); err != nil {
		t.Fatal(err)
	}
	tokenFile := writeToken(t, 0o600)
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	s := startAcmed(t, data, "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile,
		"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port))
	root := readPEMCert(t, filepath.Join(data, ca.RootCertFile))
	rootKey := readKeyFile(t, offline)
	dir := t.TempDir()
	good, goodKey := signIntermediate(t, dir, "good", root, rootKey)
	_, otherKey := signIntermediate(t, dir, "other", root, rootKey)
	strangerRoot, strangerKey := selfSigned(t)
	stranger, strangerInterKey := signIntermediate(t, dir, "stranger", strangerRoot, strangerKey)
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"nothing to sign with", nil, "root.key is absent): install an intermediate signed elsewhere with --cert FILE --key FILE"},
		{"--cert without --key", []string{"--cert", good}, "--cert " + good + ": needs --key"},
		{"--key without --cert", []string{"--key", goodKey}, "--key " + goodKey + ": needs --cert"},
		{"--key does not match", []string{"--cert", good, "--key", otherKey}, "does not match"},
		{"another root", []string{"--cert", stranger, "--key", strangerInterKey}, "not signed by the root"},
		{"--cert missing", []string{"--cert", missing, "--key", goodKey}, "--cert: open " + missing},
		{"--key not a key", []string{"--cert", good, "--key", good}, "--key"},
		{"--key-label with the file backend", []string{"--cert", good, "--key", goodKey, "--key-label", "x"}, "--key-label: only with --ca-backend pkcs11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := adminCLI(t, s, tokenFile, append([]string{"ca", "rotate"}, tc.args...)...)
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("exit %v, want 1\nstdout %s\nstderr %s", err, stdout, stderr)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q, want one line containing %q", stderr, tc.want)
			}
		})
	}
	var list struct {
		Issuers []adminIssuer `json:"issuers"`
	}
	adminJSON(t, s, tokenFile, &list, "ca", "list")
	if len(list.Issuers) != 1 || list.Issuers[0].State != "active" {
		t.Fatalf("after refused rotations: %+v", list.Issuers)
	}

	var installed adminIssuer
	adminJSON(t, s, tokenFile, &installed, "ca", "rotate", "--cert", good, "--key", goodKey)
	want := ca.CRLName(readPEMCert(t, good))
	if installed.Name != want || installed.State != "active" || installed.Key != "store (wrapped)" {
		t.Fatalf("install: %+v, want %s active", installed, want)
	}
	// The same intermediate twice is refused.
	if _, stderr, err := adminCLI(t, s, tokenFile, "ca", "rotate", "--cert", good, "--key", goodKey); err == nil || !strings.Contains(stderr, "already one of this CA's issuers") {
		t.Fatalf("installing it again: %v %s", err, stderr)
	}
	// The installed intermediate signs the next certificate.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	der, _ := issue(t, ctx, newAccount(t, ctx, s), h, "installed.rotate.example")
	mustIssuer(t, der, readPEMCert(t, good))
	verifyChain(t, s, der, "installed.rotate.example")
}

func readKeyFile(t *testing.T, path string) *ecdsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(must(os.ReadFile(path)))
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func selfSigned(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, der), key
}

// signIntermediate signs an intermediate under root with rootKey, as an
// operator with an offline root would, and writes it and its key (SEC1,
// as openssl ecparam writes) to dir.
func signIntermediate(t *testing.T, dir, name string, root *x509.Certificate, rootKey *ecdsa.PrivateKey) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "offline-signed intermediate " + name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestRotateOCSPDelegated: with --ocsp-delegated, each intermediate,
// retired or new, answers through a responder certificate of its own
// that openssl accepts.
func TestRotateOCSPDelegated(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	dns, h := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "ca")
	tokenFile := writeToken(t, 0o600)
	s := startAcmed(t, data, "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile,
		"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--ocsp", "--ocsp-delegated")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := newAccount(t, ctx, s)
	old, _ := issue(t, ctx, c, h, "old.delegated.example")
	var rotated adminIssuer
	adminJSON(t, s, tokenFile, &rotated, "ca", "rotate")
	fresh, _ := issue(t, ctx, c, h, "new.delegated.example")
	if ca.CRLName(mustParse(t, fresh[1])) != rotated.Name || ca.CRLName(mustParse(t, old[1])) == rotated.Name {
		t.Fatal("the rotation did not change the issuing intermediate")
	}
	if err := c.RevokeCert(ctx, nil, old[0], acme.CRLReasonCessationOfOperation); err != nil {
		t.Fatal(err)
	}
	ocspCheck(t, ctx, data, pemOf(old[1]), old[0], "revoked")
	ocspCheck(t, ctx, data, pemOf(fresh[1]), fresh[0], "good")
}

// waitSwap waits for s to log that it signs with the issuer named name,
// and logs how long after since that was.
func waitSwap(t *testing.T, s *server, name string, since time.Time) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		if strings.Contains(s.ReadLog(), `msg="signing with a new intermediate" issuer=`+name) {
			t.Logf("replica %s signs with %s %v after the rotation", s.dir, name, time.Since(since).Round(10*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s does not sign with %s:\n%s", s.dir, name, s.ReadLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
