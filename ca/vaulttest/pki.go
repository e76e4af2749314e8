package vaulttest

import (
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/ca"
)

// Names SetupPKI uses.
const (
	RootMount = "pki_root" // the root CA's mount
	Mount     = "pki"      // the intermediate's mount acmed signs with
	Role      = "acmed"
	Policy    = "acmed"
)

// PolicyHCL is all acmed's token may do: sign and revoke.
const PolicyHCL = `path "pki/sign-verbatim/acmed" { capabilities = ["update"] }
path "pki/revoke" { capabilities = ["update"] }
`

// PKI is what SetupPKI made.
type PKI struct {
	Root, Intermediate *x509.Certificate
	// Token is a token with only PolicyHCL (no default policy), and
	// TokenFile a 0600 file holding it.
	Token, TokenFile string
	// RoleID and SecretIDFile log in as AppRole "acmed", whose tokens
	// have only PolicyHCL.
	RoleID, SecretIDFile string
	// CRL and OCSP are the URLs Vault's config/urls puts in certificates.
	CRL, OCSP string
}

// Config is acmed's Vault backend configuration for the token file (and,
// with TLS, Vault's CA file).
func (s *Server) Config(p PKI) ca.VaultConfig {
	return ca.VaultConfig{Addr: s.Addr, Mount: Mount, Role: Role, TokenFile: p.TokenFile, CAFile: s.CAFile}
}

// SetupPKI mounts a root (EC P-384) at pki_root and an intermediate (EC
// P-256) it signed at pki, with the chain imported so that pki/ca_chain
// ends in the root; sets pki's config/urls; creates role acmed
// (key_type=any, max_ttl 2160h), policy acmed (PolicyHCL), a token with it
// and an AppRole.
func (s *Server) SetupPKI(t testing.TB) PKI {
	t.Helper()
	s.Must(t, http.MethodPost, "sys/mounts/"+RootMount, map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "87600h"}})
	root := s.Must(t, http.MethodPost, RootMount+"/root/generate/internal", map[string]any{
		"common_name": "vaulttest root", "ttl": "87600h", "key_type": "ec", "key_bits": 384})
	s.Must(t, http.MethodPost, "sys/mounts/"+Mount, map[string]any{"type": "pki", "config": map[string]any{"max_lease_ttl": "43800h"}})
	csr := s.Must(t, http.MethodPost, Mount+"/intermediate/generate/internal", map[string]any{
		"common_name": "vaulttest intermediate", "key_type": "ec", "key_bits": 256})
	signed := s.Must(t, http.MethodPost, RootMount+"/root/sign-intermediate", map[string]any{
		"csr": csr["csr"], "ttl": "43800h", "format": "pem"})
	rootPEM, _ := root["certificate"].(string)
	intPEM, _ := signed["certificate"].(string)
	s.Must(t, http.MethodPost, Mount+"/intermediate/set-signed", map[string]any{"certificate": intPEM + "\n" + rootPEM})
	p := PKI{Root: parse(t, rootPEM), Intermediate: parse(t, intPEM),
		CRL: s.Addr + "/v1/" + Mount + "/crl", OCSP: s.Addr + "/v1/" + Mount + "/ocsp"}
	s.Must(t, http.MethodPost, Mount+"/config/urls", map[string]any{
		"issuing_certificates":    []string{s.Addr + "/v1/" + Mount + "/ca"},
		"crl_distribution_points": []string{p.CRL},
		"ocsp_servers":            []string{p.OCSP},
	})
	s.Must(t, http.MethodPost, Mount+"/roles/"+Role, map[string]any{"key_type": "any", "max_ttl": "2160h", "allow_any_name": true})
	s.Must(t, http.MethodPut, "sys/policies/acl/"+Policy, map[string]any{"policy": PolicyHCL})

	p.Token = s.NewToken(t, "1h")
	p.TokenFile = WriteSecret(t, "token", p.Token)

	s.Must(t, http.MethodPost, "sys/auth/approle", map[string]any{"type": "approle"})
	s.Must(t, http.MethodPost, "auth/approle/role/"+Role, map[string]any{
		"token_policies": []string{Policy}, "token_no_default_policy": true, "token_ttl": "1h"})
	roleID := s.Must(t, http.MethodGet, "auth/approle/role/"+Role+"/role-id", nil)
	p.RoleID, _ = roleID["role_id"].(string)
	secret := s.Must(t, http.MethodPost, "auth/approle/role/"+Role+"/secret-id", nil)
	sid, _ := secret["secret_id"].(string)
	p.SecretIDFile = WriteSecret(t, "secret-id", sid)
	return p
}

// NewToken creates a token with only the acmed policy, valid for ttl.
func (s *Server) NewToken(t testing.TB, ttl string) string {
	t.Helper()
	auth := s.Must(t, http.MethodPost, "auth/token/create", map[string]any{
		"policies": []string{Policy}, "no_default_policy": true, "ttl": ttl})
	tok, _ := auth["client_token"].(string)
	if tok == "" {
		t.Fatalf("vaulttest: token create: %v", auth)
	}
	return tok
}

// WriteSecret writes value to a new 0600 file in a temp dir.
func WriteSecret(t testing.TB, name, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func parse(t testing.TB, s string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("vaulttest: no PEM certificate in %q", s)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
