package integration

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/challenges/challengetest"
)

// TestOCSPWithOpenSSL issues a certificate from an acmed serving OCSP,
// asks openssl ocsp about it (good), revokes it through ACME, and asks
// again (revoked, keyCompromise), with the CA signing answers itself and
// with a delegated responder certificate; Go's parser reads a GET answer
// the same.
func TestOCSPWithOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl is not installed")
	}
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"issuer signs", nil},
		{"delegated responder", []string{"--ocsp-delegated"}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			dns := challengetest.StartDNS(t)
			h := challengetest.StartHTTP01(t)
			data := filepath.Join(t.TempDir(), "data")
			s := startAcmed(t, data, append([]string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--ocsp"}, mode.args...)...)
			c := newAccount(t, ctx, s)
			der, key := issue(t, ctx, c, h, "ocsp.example")
			leaf := verifyChain(t, s, der, "ocsp.example")
			url := strings.TrimSuffix(s.dir, "/directory") + "/ocsp"
			if !slices.Equal(leaf.OCSPServer, []string{url}) {
				t.Fatalf("certificate's OCSP URL %q, want %q", leaf.OCSPServer, url)
			}
			leafFile := filepath.Join(t.TempDir(), "leaf.pem")
			if err := os.WriteFile(leafFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der[0]}), 0o600); err != nil {
				t.Fatal(err)
			}
			check := func(want ...string) {
				t.Helper()
				cmd := exec.CommandContext(ctx, "openssl", "ocsp", "-issuer", filepath.Join(data, "intermediate.pem"),
					"-cert", leafFile, "-url", leaf.OCSPServer[0], "-CAfile", filepath.Join(data, "root.pem"))
				out, err := cmd.CombinedOutput()
				if err != nil {
					t.Fatalf("openssl ocsp: %v\n%s", err, out)
				}
				t.Logf("openssl ocsp:\n%s", out)
				for _, w := range append(want, "Response verify OK") {
					if !strings.Contains(string(out), w) {
						t.Fatalf("openssl ocsp says\n%s\nwant %q", out, w)
					}
				}
			}
			check(leafFile + ": good")

			if err := c.RevokeCert(ctx, key, der[0], acme.CRLReasonKeyCompromise); err != nil {
				t.Fatalf("revoke: %v", err)
			}
			check(leafFile+": revoked", "Reason: keyCompromise")

			// The same answer by GET, as a browser or a cache asks.
			issuer, err := x509.ParseCertificate(der[1])
			if err != nil {
				t.Fatal(err)
			}
			req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: crypto.SHA256})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := s.httpClient().Get(url + "/" + base64.StdEncoding.EncodeToString(req))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") {
				t.Fatalf("GET: HTTP %d Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
			}
			got, err := ocsp.ParseResponseForCert(body, leaf, issuer)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != ocsp.Revoked || got.RevocationReason != ocsp.KeyCompromise {
				t.Fatalf("GET answer: status %d reason %d, want revoked, keyCompromise", got.Status, got.RevocationReason)
			}
		})
	}
}
