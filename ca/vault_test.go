package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/vaulttest"
)

// vaultFixture is one Vault dev server with its PKI, shared by a test's
// subtests.
func vaultFixture(t *testing.T) (*vaulttest.Server, vaulttest.PKI) {
	t.Helper()
	s := vaulttest.Start(t)
	return s, s.SetupPKI(t)
}

func openVault(t *testing.T, cfg ca.VaultConfig) *ca.Vault {
	t.Helper()
	v, err := ca.OpenVault(context.Background(), cfg)
	if err != nil {
		t.Fatalf("OpenVault: %v", err)
	}
	return v
}

func vaultRequest(t *testing.T, key crypto.Signer, names ...string) ca.Request {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	return ca.Request{CSR: der, PublicKey: key.Public(), DNSNames: names, CommonName: names[0],
		NotBefore: now, NotAfter: now.Add(24 * time.Hour)}
}

func TestVaultSign(t *testing.T) {
	s, p := vaultFixture(t)
	v := openVault(t, s.Config(p))
	if !v.Root().Equal(p.Root) || !v.Intermediate().Equal(p.Intermediate) {
		t.Fatalf("chain from Vault: root %q, issuer %q; want %q, %q", v.Root().Subject, v.Intermediate().Subject, p.Root.Subject, p.Intermediate.Subject)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	tests := []struct {
		name      string
		key       crypto.Signer
		eku       []x509.ExtKeyUsage
		wantEKU   []x509.ExtKeyUsage
		wantUsage x509.KeyUsage
	}{
		{"EC, default EKUs", ec, nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, x509.KeyUsageDigitalSignature},
		{"EC, the profile's serverAuth only", ec, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, x509.KeyUsageDigitalSignature},
		{"RSA, clientAuth", rsaKey, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := vaultRequest(t, tt.key, "a.example.test", "b.example.test")
			req.ExtKeyUsage = tt.eku
			issued, err := v.Sign(context.Background(), req)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			leaf := issued.Leaf
			if !slices.Equal(leaf.ExtKeyUsage, tt.wantEKU) || leaf.KeyUsage != tt.wantUsage {
				t.Errorf("EKU %v key usage %#x; want %v %#x", leaf.ExtKeyUsage, leaf.KeyUsage, tt.wantEKU, tt.wantUsage)
			}
			if !slices.Equal(leaf.DNSNames, req.DNSNames) {
				t.Errorf("DNS names %v, want %v", leaf.DNSNames, req.DNSNames)
			}
			if d := leaf.NotAfter.Sub(req.NotAfter); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("NotAfter %s, want the profile's %s", leaf.NotAfter, req.NotAfter)
			}
			if issued.Serial != acme.SerialHex(leaf.SerialNumber) {
				t.Errorf("Serial %q, want %q", issued.Serial, acme.SerialHex(leaf.SerialNumber))
			}
			// Vault is the CA of record: its config/urls are in the certificate.
			if !slices.Equal(leaf.CRLDistributionPoints, []string{p.CRL}) || !slices.Equal(leaf.OCSPServer, []string{p.OCSP}) {
				t.Errorf("CRL DPs %v, OCSP %v; want Vault's %s, %s", leaf.CRLDistributionPoints, leaf.OCSPServer, p.CRL, p.OCSP)
			}
			chain := certsOf(t, issued.ChainPEM)
			if len(chain) != 2 || !chain[1].Equal(p.Intermediate) {
				t.Fatalf("chain has %d certificates; want leaf and Vault's intermediate, no root", len(chain))
			}
			roots := x509.NewCertPool()
			roots.AddCert(p.Root)
			inter := x509.NewCertPool()
			inter.AddCert(chain[1])
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "b.example.test", KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("leaf does not verify to Vault's root: %v", err)
			}
		})
	}
	if err := v.Ready(context.Background()); err != nil {
		t.Errorf("Ready after signing: %v", err)
	}
}

func certsOf(t *testing.T, pemBytes []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for b, rest := pem.Decode(pemBytes); b != nil; b, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestVaultRevoke: a revocation reaches Vault, whose CRL then lists the
// serial; revoking again is no error.
func TestVaultRevoke(t *testing.T) {
	s, p := vaultFixture(t)
	v := openVault(t, s.Config(p))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	issued, err := v.Sign(context.Background(), vaultRequest(t, key, "r.example.test"))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := v.Revoke(context.Background(), issued.Serial); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
	}
	if !VaultCRLLists(t, s, issued.Leaf) {
		t.Fatalf("Vault's CRL does not list serial %s", issued.Serial)
	}
}

// VaultCRLLists reports whether Vault's pki CRL lists cert's serial.
func VaultCRLLists(t *testing.T, s *vaulttest.Server, cert *x509.Certificate) bool {
	t.Helper()
	resp, err := s.HTTPClient().Get(s.Addr + "/v1/" + vaulttest.Mount + "/crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(raw)
	if err != nil {
		t.Fatalf("Vault's CRL: %v", err)
	}
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// TestVaultAppRole: acmed logs in with AppRole, and logs in again when
// Vault refuses its token (here: every token revoked by the operator).
func TestVaultAppRole(t *testing.T) {
	s, p := vaultFixture(t)
	cfg := s.Config(p)
	cfg.TokenFile, cfg.RoleID, cfg.SecretIDFile = "", p.RoleID, p.SecretIDFile
	v := openVault(t, cfg)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Sign(context.Background(), vaultRequest(t, key, "approle.example.test")); err != nil {
		t.Fatalf("Sign after AppRole login: %v", err)
	}
	revokeAllTokens(t, s)
	if _, err := v.Sign(context.Background(), vaultRequest(t, key, "approle.example.test")); err != nil {
		t.Fatalf("Sign after the token was revoked (should log in again): %v", err)
	}
}

// revokeAllTokens revokes every token but the root's.
func revokeAllTokens(t *testing.T, s *vaulttest.Server) {
	t.Helper()
	list := s.Must(t, "LIST", "auth/token/accessors", nil)
	keys, _ := list["keys"].([]any)
	for _, k := range keys {
		acc, _ := k.(string)
		info := s.Must(t, http.MethodPost, "auth/token/lookup-accessor", map[string]any{"accessor": acc})
		if pols, _ := info["policies"].([]any); slices.Contains(pols, any("root")) {
			continue
		}
		s.Must(t, http.MethodPost, "auth/token/revoke-accessor", map[string]any{"accessor": acc})
	}
}

// TestVaultTokenFileReread: a token file rewritten (as Vault Agent does)
// is read again when Vault refuses the old token.
func TestVaultTokenFileReread(t *testing.T) {
	s, p := vaultFixture(t)
	v := openVault(t, s.Config(p))
	revokeAllTokens(t, s)
	if err := os.WriteFile(p.TokenFile, []byte(s.NewToken(t, "1h")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := v.Sign(context.Background(), vaultRequest(t, key, "reread.example.test")); err != nil {
		t.Fatalf("Sign with the rewritten token file: %v", err)
	}
}

// TestVaultRefusals: what Vault refuses is permanent (not
// ErrUnavailable) and fails Ready; a sealed Vault is transient, and Ready
// recovers once it is unsealed.
func TestVaultRefusals(t *testing.T) {
	s, p := vaultFixture(t)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	later := func() { clock.Add(int64(time.Minute)) }

	tests := []struct {
		name      string
		cfg       func(c *ca.VaultConfig)
		transient bool
		want      string
	}{
		{"wrong role: outside the token's policy", func(c *ca.VaultConfig) { c.Role = "nope" }, false, "403"},
		{"wrong role: the policy allows it, Vault has none", func(c *ca.VaultConfig) {
			c.Role = "nope"
			c.TokenFile = vaulttest.WriteSecret(t, "root-token", vaulttest.RootToken)
		}, false, "unknown role"},
		{"refused token", func(c *ca.VaultConfig) { c.TokenFile = vaulttest.WriteSecret(t, "bad", "hvs.not-a-token") }, false, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.Config(p)
			cfg.Now = now
			tt.cfg(&cfg)
			v := openVault(t, cfg)
			_, err := v.Sign(context.Background(), vaultRequest(t, key, "x.example.test"))
			if err == nil || errors.Is(err, ca.ErrUnavailable) != tt.transient || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign: %v; want an error naming %q, transient %v", err, tt.want, tt.transient)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			later()
			if err := v.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Ready: %v; want the refusal (%q)", err, tt.want)
			}
		})
	}

	t.Run("sealed", func(t *testing.T) {
		cfg := s.Config(p)
		cfg.Now = now
		v := openVault(t, cfg)
		s.Seal(t)
		_, err := v.Sign(context.Background(), vaultRequest(t, key, "x.example.test"))
		if !errors.Is(err, ca.ErrUnavailable) || !strings.Contains(err.Error(), "503") {
			t.Fatalf("Sign on a sealed Vault: %v; want ErrUnavailable (503)", err)
		}
		if err := v.Revoke(context.Background(), "01"); !errors.Is(err, ca.ErrUnavailable) {
			t.Errorf("Revoke on a sealed Vault: %v; want ErrUnavailable", err)
		}
		later()
		if err := v.Ready(context.Background()); err == nil {
			t.Error("Ready on a sealed Vault: nil")
		}
		s.Unseal(t)
		later()
		if err := v.Ready(context.Background()); err != nil {
			t.Errorf("Ready once unsealed: %v", err)
		}
	})
}

// TestOpenVaultBadInput: what stops OpenVault, each with one line naming
// the flag or what Vault said.
func TestOpenVaultBadInput(t *testing.T) {
	s, p := vaultFixture(t)
	loose := vaulttest.WriteSecret(t, "loose", p.Token)
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  func(c *ca.VaultConfig)
		want string
	}{
		{"token file readable by others", func(c *ca.VaultConfig) { c.TokenFile = loose }, "--vault-token-file " + loose + " is open to group or others"},
		{"token file missing", func(c *ca.VaultConfig) { c.TokenFile = "/nonexistent/token" }, "--vault-token-file /nonexistent/token: no such file"},
		{"no auth", func(c *ca.VaultConfig) { c.TokenFile = "" }, "no auth"},
		{"unreachable", func(c *ca.VaultConfig) { c.Addr = "http://127.0.0.1:1" }, "--vault-addr http://127.0.0.1:1: fetching the CA chain"},
		{"mount without a CA", func(c *ca.VaultConfig) { c.Mount = "sys" }, "fetching the CA chain of mount sys"},
		{"CA file missing", func(c *ca.VaultConfig) { c.CAFile = "/nonexistent/ca.pem" }, "--vault-ca-file /nonexistent/ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.Config(p)
			tt.cfg(&cfg)
			_, err := ca.OpenVault(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("OpenVault: %v; want one line with %q", err, tt.want)
			}
		})
	}
	t.Run("sealed", func(t *testing.T) {
		s.Seal(t)
		t.Cleanup(func() { s.Unseal(t) })
		_, err := ca.OpenVault(context.Background(), s.Config(p))
		if err == nil || !strings.Contains(err.Error(), "sealed") {
			t.Fatalf("OpenVault on a sealed Vault: %v; want it to say sealed", err)
		}
	})
}

// TestVaultCheckCSR: sign-verbatim copies a CSR's subject and extensions,
// so the Vault signer takes only a CN and the SANs.
func TestVaultCheckCSR(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	mustStaple := pkix.Extension{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 24}, Value: []byte{0x30, 0x03, 0x02, 0x01, 0x05}}
	tests := []struct {
		name string
		tmpl x509.CertificateRequest
		want string
	}{
		{"CN and SANs", x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.test"}, DNSNames: []string{"a.test"}}, ""},
		{"SANs only", x509.CertificateRequest{DNSNames: []string{"a.test"}}, ""},
		{"organisation", x509.CertificateRequest{Subject: pkix.Name{CommonName: "a.test", Organization: []string{"Evil"}}, DNSNames: []string{"a.test"}}, "subject has attribute 2.5.4.10"},
		{"must-staple", x509.CertificateRequest{DNSNames: []string{"a.test"}, ExtraExtensions: []pkix.Extension{mustStaple}}, "requests extension 1.3.6.1.5.5.7.1.24"},
	}
	v := &ca.Vault{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &tt.tmpl, key)
			if err != nil {
				t.Fatal(err)
			}
			csr, _ := x509.ParseCertificateRequest(der)
			err = v.CheckCSR(csr)
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckCSR: %v; want %q", err, tt.want)
			}
		})
	}
}
