package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
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

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// crlRefresh is --crl-refresh in these tests: short, so a revocation
// reaches the CRL within seconds.
const crlRefresh = 2 * time.Second

// TestCRLAcrossReplicas: two replicas on one Redis. A certificate issued
// and revoked on replica A is on the CRL replica B serves, on its ACME
// listener and on its --crl-listen, once B's CRL is rebuilt; the CRL
// verifies against the chain with openssl and Go, names the
// certificate's CRL distribution point as its issuing distribution
// point, carries the reason, and makes openssl reject the revoked
// certificate and accept a good one.
func TestCRLAcrossReplicas(t *testing.T) {
	r := redistest.Start(t)
	dns, http01 := challengetest.StartDNS(t), challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "ca")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	portA := freePort(t)
	external := "https://localhost:" + strconv.Itoa(portA)
	start := func(port int) (*server, string) {
		plain := "127.0.0.1:" + strconv.Itoa(freePort(t))
		s := startAcmed(t, data, "--listen", "127.0.0.1:"+strconv.Itoa(port), "--external-url", external,
			"--store", r.URL, "--resolver", dns.Addr, "--http01-port", strconv.Itoa(http01.Port),
			"--crl-refresh", crlRefresh.String(), "--crl-validity", "1h", "--crl-listen", plain)
		return s, "http://" + plain
	}
	a, _ := start(portA)
	b, plainB := start(freePort(t))

	inter := readPEMCert(t, filepath.Join(data, ca.IntermediateCertFile))
	path := "/crl/" + ca.CRLName(inter) + ".crl"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := newAccount(t, ctx, a)
	good, _ := issue(t, ctx, c, http01, "good.crl.example")
	bad, _ := issue(t, ctx, c, http01, "revoked.crl.example")
	leaf, err := x509.ParseCertificate(bad[0])
	if err != nil {
		t.Fatal(err)
	}
	if want := external + path; len(leaf.CRLDistributionPoints) != 1 || leaf.CRLDistributionPoints[0] != want {
		t.Fatalf("CRL distribution points %q, want [%s]", leaf.CRLDistributionPoints, want)
	}

	if err := c.RevokeCert(ctx, nil, bad[0], acme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke on replica A: %v", err)
	}
	revoked := time.Now()
	bHTTPS := strings.TrimSuffix(b.dir, "/directory") + path
	var list *x509.RevocationList
	var der []byte
	deadline := revoked.Add(30 * time.Second)
	for {
		der = getCRL(t, b.httpClient(), plainB+path)
		if list = parseCRL(t, der, inter); onCRL(list, leaf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the serial %x is not on replica B's CRL %v", leaf.SerialNumber, list.Number)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("revocation on replica A on replica B's CRL after %v (--crl-refresh %v)", time.Since(revoked).Round(10*time.Millisecond), crlRefresh)
	if !onCRL(parseCRL(t, getCRL(t, b.httpClient(), bHTTPS), inter), leaf) {
		// B's ACME listener serves the same store's CRL: at most one
		// poll behind its other listener.
		deadline := time.Now().Add(10 * time.Second)
		for !onCRL(parseCRL(t, getCRL(t, b.httpClient(), bHTTPS), inter), leaf) {
			if time.Now().After(deadline) {
				t.Fatal("replica B's ACME listener does not serve the CRL with the revocation")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 && e.ReasonCode != int(acme.CRLReasonSuperseded) {
			t.Errorf("reason %d on the CRL, want superseded (%d)", e.ReasonCode, acme.CRLReasonSuperseded)
		}
	}
	checkIDP(t, list, leaf.CRLDistributionPoints[0])
	opensslCRL(t, data, der, good[0], bad[0])
	if out := a.ReadLog() + b.ReadLog(); strings.Contains(out, "level=ERROR") {
		t.Errorf("errors logged:\n%s", out)
	}
}

func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s holds no PEM", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// getCRL fetches a CRL, waiting out the 503 of a replica whose first
// CRL is not built yet.
func getCRL(t *testing.T, hc *http.Client, url string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		switch {
		case resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "application/pkix-crl":
			return body
		case resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline):
			t.Fatalf("GET %s: %d %s: %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func parseCRL(t *testing.T, der []byte, issuer *x509.Certificate) *x509.RevocationList {
	t.Helper()
	list, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := list.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("CRL %v: %v", list.Number, err)
	}
	return list
}

func onCRL(list *x509.RevocationList, leaf *x509.Certificate) bool {
	for _, e := range list.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

func checkIDP(t *testing.T, list *x509.RevocationList, cdp string) {
	t.Helper()
	for _, ext := range list.Extensions {
		if ext.Id.Equal([]int{2, 5, 29, 28}) {
			uris, onlyUser, err := ca.ParseIssuingDistributionPoint(ext.Value)
			if err != nil || !ext.Critical || !onlyUser || len(uris) != 1 || uris[0] != cdp {
				t.Fatalf("issuing distribution point %q (critical %v, user certificates only %v, %v), want the CDP %s",
					uris, ext.Critical, onlyUser, err, cdp)
			}
			return
		}
	}
	t.Fatal("the CRL has no issuing distribution point")
}

// opensslCRL: openssl verifies the CRL against the chain, and with it
// rejects the revoked certificate and accepts the good one.
func opensslCRL(t *testing.T, data string, der, good, bad []byte) {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crlPEM := write("crl.pem", "X509 CRL", der)
	crlDER := filepath.Join(dir, "crl.der")
	if err := os.WriteFile(crlDER, der, 0o600); err != nil {
		t.Fatal(err)
	}
	goodPEM, badPEM := write("good.pem", "CERTIFICATE", good), write("bad.pem", "CERTIFICATE", bad)
	root, inter := filepath.Join(data, ca.RootCertFile), filepath.Join(data, ca.IntermediateCertFile)
	chain := filepath.Join(dir, "chain.pem")
	chainPEM := append(must(os.ReadFile(inter)), must(os.ReadFile(root))...)
	if err := os.WriteFile(chain, chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		out, err := exec.Command("openssl", args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("crl", "-inform", "DER", "-in", crlDER, "-CAfile", chain, "-verify", "-noout"); err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	verify := func(cert string) (string, error) {
		return run("verify", "-crl_check", "-CRLfile", crlPEM, "-CAfile", root, "-untrusted", inter, cert)
	}
	if out, err := verify(goodPEM); err != nil {
		t.Errorf("openssl verify -crl_check of the good certificate: %v\n%s", err, out)
	}
	if out, err := verify(badPEM); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify -crl_check of the revoked certificate: %v, want \"certificate revoked\"\n%s", err, out)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
