package ca

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/acmed/acmed/acme"
)

// VaultConfig names the Vault PKI backend: Vault's PKI secrets engine
// signs, acmed does the ACME work. The field comments give the acmed flags.
type VaultConfig struct {
	Addr  string // --vault-addr: https://vault.example:8200
	Mount string // --vault-pki-mount: the PKI engine's path; "" is pki
	Role  string // --vault-role: the role sign-verbatim is called with
	// Auth: a token file, or AppRole (role ID and a secret ID file).
	TokenFile    string // --vault-token-file, mode 0600 or stricter
	RoleID       string // --vault-approle-role-id
	SecretIDFile string // --vault-approle-secret-id-file, mode 0600 or stricter
	CAFile       string // --vault-ca-file: PEM CAs for Vault's TLS; "": the system's

	// Timeout bounds one request to Vault; default 10s.
	Timeout time.Duration
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

func (c VaultConfig) mount() string {
	if m := strings.Trim(c.Mount, "/"); m != "" {
		return m
	}
	return "pki"
}

func (c VaultConfig) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Vault signs through a Vault PKI mount's sign-verbatim endpoint and
// forwards revocations to it: Vault is the CA of record, its CRL and OCSP
// (config/urls) are the ones certificates name. It is safe for concurrent
// use.
type Vault struct {
	cfg    VaultConfig
	client *vault.Client
	auth   *vaultAuth
	health vaultHealth

	root, issuer *x509.Certificate
	rootPEM      []byte
	chainPEM     []byte // the issuing CA and any intermediates above it, no root
}

// OpenVault reads the secret files (refusing loose modes), connects to
// Vault and fetches the mount's CA chain, which Vault serves without a
// token. It does not log in: a token or role Vault refuses shows at the
// first signing (an error, and Ready failing), not here.
func OpenVault(ctx context.Context, cfg VaultConfig) (*Vault, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	auth, err := newVaultAuth(cfg)
	if err != nil {
		return nil, err
	}
	hc, err := vaultHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	// No retries: a transient failure goes back to the ACME client as
	// 503 + Retry-After at once, rather than holding its request.
	client, err := vault.NewClient(&vault.Config{Address: cfg.Addr, HttpClient: hc, Timeout: cfg.Timeout, MaxRetries: 0})
	if err != nil {
		return nil, fmt.Errorf("ca: --vault-addr %s: %w", cfg.Addr, err)
	}
	// NewClient reads VAULT_TOKEN and VAULT_NAMESPACE from the
	// environment; acmed's flags alone say whom it talks to as whom.
	client.ClearToken()
	client.ClearNamespace()
	v := &Vault{cfg: cfg, client: client, auth: auth}
	auth.v = v
	if err := v.loadChain(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

func vaultHTTPClient(cfg VaultConfig) (*http.Client, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		raw, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca: --vault-ca-file %s: %w", cfg.CAFile, unwrapPath(err))
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(raw) {
			return nil, fmt.Errorf("ca: --vault-ca-file %s: holds no PEM certificate", cfg.CAFile)
		}
		tlsConfig.RootCAs = pool
	}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       tlsConfig,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConnsPerHost:   64, // every issuance is a request: keep them warm
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		Timeout: cfg.Timeout,
		// Vault's redirects (a standby's) are followed by the api
		// client itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}, nil
}

// loadChain fetches {mount}/ca_chain (or {mount}/ca/pem when the mount
// has no chain): the issuing CA first, its root last. Both are public in
// Vault, so a least-privilege token need not read them.
func (v *Vault) loadChain(ctx context.Context) error {
	certs, err := v.fetchPEM(ctx, "ca_chain")
	if err == nil && len(certs) == 0 {
		certs, err = v.fetchPEM(ctx, "ca/pem")
	}
	if err != nil {
		return fmt.Errorf("ca: --vault-addr %s: fetching the CA chain of mount %s: %w", v.cfg.Addr, v.cfg.mount(), err)
	}
	if len(certs) == 0 {
		return fmt.Errorf("ca: --vault-pki-mount %s: Vault has no CA certificate there (generate or import an issuer first)", v.cfg.mount())
	}
	v.issuer = certs[0]
	last := certs[len(certs)-1]
	if !selfSigned(last) {
		return fmt.Errorf("ca: --vault-pki-mount %s: its CA chain ends in %q, not in a root: import the root into the chain (pki/intermediate/set-signed with the intermediate and its root), so that acmed can serve /roots.pem", v.cfg.mount(), last.Subject)
	}
	v.root, v.rootPEM = last, encodeCert(last.Raw)
	for i, c := range certs {
		if i > 0 {
			if err := certs[i-1].CheckSignatureFrom(c); err != nil {
				return fmt.Errorf("ca: --vault-pki-mount %s: its CA chain is broken: %q is not signed by %q: %w", v.cfg.mount(), certs[i-1].Subject, c.Subject, err)
			}
		}
		if !selfSigned(c) {
			v.chainPEM = append(v.chainPEM, encodeCert(c.Raw)...)
		}
	}
	if !v.issuer.IsCA || v.issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("ca: --vault-pki-mount %s: its issuing certificate %q is not a CA allowed to sign certificates", v.cfg.mount(), v.issuer.Subject)
	}
	return nil
}

// fetchPEM reads an unauthenticated PEM endpoint of the mount.
func (v *Vault) fetchPEM(ctx context.Context, path string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	req := v.client.NewRequest(http.MethodGet, "/v1/"+v.cfg.mount()+"/"+path)
	req.ClientToken = ""
	resp, err := v.client.RawRequestWithContext(ctx, req)
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return nil, v.cfg.describe(err)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for block, rest := pem.Decode(raw); block != nil; block, rest = pem.Decode(rest) {
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) && c.CheckSignatureFrom(c) == nil
}

// RootPEM is Vault's root, for /roots.pem. The slice is the caller's.
func (v *Vault) RootPEM() []byte { return bytes.Clone(v.rootPEM) }

// Root is the root of Vault's chain; shared, not to be modified.
func (v *Vault) Root() *x509.Certificate { return v.root }

// Intermediate is the mount's issuing CA certificate (its default
// issuer when acmed started); shared, not to be modified.
func (v *Vault) Intermediate() *x509.Certificate { return v.issuer }

// CheckCSR refuses what sign-verbatim would copy into the certificate
// unchecked: it takes the CSR's subject and extensions as they are. acmed
// has checked the names (SANs and CN); any other subject attribute (O,
// OU…) or requested extension (key usages, EKUs, must-staple…) would be a
// claim nobody validated, or would override the profile's usages.
func (v *Vault) CheckCSR(csr *x509.CertificateRequest) error {
	for _, n := range csr.Subject.Names {
		if !n.Type.Equal(oidCommonName) {
			return fmt.Errorf("the CSR's subject has attribute %s; this CA takes only a common name (the profile decides the rest)", n.Type)
		}
	}
	for _, e := range csr.Extensions {
		if !e.Id.Equal(oidSubjectAltName) {
			return fmt.Errorf("the CSR requests extension %s; this CA takes only subjectAltName (the profile decides the rest)", e.Id)
		}
	}
	return nil
}

var (
	oidCommonName     = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// Sign has Vault sign req.CSR with sign-verbatim: names and key from the
// CSR (which acmed checked), key usages and EKUs from the profile, the
// validity as far as the role's max_ttl allows (sent as ttl: a not_after
// would bypass it). NotBefore is Vault's (now, less the role's
// not_before_duration). The chain is Vault's answer, roots removed.
// Transient failures (Vault unreachable, sealed, 5xx) wrap ErrUnavailable.
func (v *Vault) Sign(ctx context.Context, req Request) (*Issued, error) {
	issued, err := v.sign(ctx, req)
	v.health.record(v.cfg.now(), err)
	return issued, err
}

func (v *Vault) sign(ctx context.Context, req Request) (*Issued, error) {
	if len(req.CSR) == 0 {
		return nil, errors.New("ca: vault: the request carries no CSR (Vault signs CSRs)")
	}
	usage, err := leafKeyUsage(req.PublicKey, req.KeyUsage)
	if err != nil {
		return nil, err
	}
	ekus, err := vaultEKUs(req.ExtKeyUsage)
	if err != nil {
		return nil, err
	}
	ttl := req.NotAfter.Sub(v.cfg.now()).Truncate(time.Second)
	if req.NotAfter.IsZero() || ttl < time.Second {
		return nil, fmt.Errorf("ca: vault: NotAfter %s is not in the future", req.NotAfter)
	}
	body := map[string]any{
		"csr":                     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR})),
		"ttl":                     fmt.Sprintf("%ds", int64(ttl/time.Second)),
		"key_usage":               vaultKeyUsages(usage),
		"ext_key_usage":           ekus,
		"format":                  "pem",
		"remove_roots_from_chain": true,
	}
	secret, err := v.write(ctx, v.cfg.mount()+"/sign-verbatim/"+v.cfg.Role, body)
	if err != nil {
		return nil, fmt.Errorf("ca: vault: sign-verbatim/%s: %w", v.cfg.Role, err)
	}
	return v.issued(req, secret)
}

// issued reads sign-verbatim's answer.
func (v *Vault) issued(req Request, secret *vault.Secret) (*Issued, error) {
	if secret == nil || secret.Data == nil {
		return nil, errors.New("ca: vault: sign-verbatim answered with no data")
	}
	certPEM, _ := secret.Data["certificate"].(string)
	block, _ := pem.Decode([]byte(certPEM))
	if block == nil {
		return nil, errors.New("ca: vault: sign-verbatim's answer has no certificate")
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: vault: parse issued certificate: %w", err)
	}
	if pub, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(leaf.PublicKey) {
		return nil, errors.New("ca: vault: the certificate Vault issued is not for the CSR's key")
	}
	chain := encodeCert(leaf.Raw)
	var caChain []string
	if list, ok := secret.Data["ca_chain"].([]any); ok {
		for _, c := range list {
			if s, ok := c.(string); ok {
				caChain = append(caChain, s)
			}
		}
	} else if s, ok := secret.Data["issuing_ca"].(string); ok {
		caChain = []string{s}
	}
	for _, s := range caChain {
		for b, rest := pem.Decode([]byte(s)); b != nil; b, rest = pem.Decode(rest) {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("ca: vault: parse CA chain: %w", err)
			}
			if !selfSigned(c) {
				chain = append(chain, encodeCert(c.Raw)...)
			}
		}
	}
	return &Issued{Leaf: leaf, ChainPEM: chain, Serial: acme.SerialHex(leaf.SerialNumber)}, nil
}

// Revoke has Vault revoke the certificate with serial (acme.SerialHex's
// form). Vault's CRL and OCSP then list it. Revoking one Vault already
// revoked succeeds: Vault answers with its first revocation time.
func (v *Vault) Revoke(ctx context.Context, serial string) error {
	_, err := v.write(ctx, v.cfg.mount()+"/revoke", map[string]any{"serial_number": vaultSerial(serial)})
	v.health.record(v.cfg.now(), err)
	if err != nil {
		return fmt.Errorf("ca: vault: revoke %s: %w", serial, err)
	}
	return nil
}

// vaultSerial is Vault's spelling of a serial: hex byte pairs joined by
// colons.
func vaultSerial(hexSerial string) string {
	if len(hexSerial)%2 == 1 {
		hexSerial = "0" + hexSerial
	}
	var b strings.Builder
	for i := 0; i < len(hexSerial); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strings.ToLower(hexSerial[i : i+2]))
	}
	return b.String()
}

// ServerCertificate has Vault sign acmed's own HTTPS certificate (a fresh
// P-256 key, valid up to 90 days as the role allows), so that clients
// trust acmed through the same root as the certificates it issues.
func (v *Vault) ServerCertificate(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("ca: server certificate needs at least one host")
	}
	var csrTmpl x509.CertificateRequest
	for _, h := range hosts {
		h = unbracket(h)
		if h == "" {
			return tls.Certificate{}, errors.New("ca: server certificate host is empty")
		}
		if ip := net.ParseIP(h); ip != nil {
			csrTmpl.IPAddresses = append(csrTmpl.IPAddresses, ip)
		} else {
			csrTmpl.DNSNames = append(csrTmpl.DNSNames, h)
		}
	}
	csrTmpl.Subject.CommonName = unbracket(hosts[0])
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: generate server key: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &csrTmpl, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: server certificate CSR: %w", err)
	}
	now := v.cfg.now()
	notAfter := now.Add(serverCertValidity)
	if notAfter.After(v.issuer.NotAfter) {
		notAfter = v.issuer.NotAfter
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*v.cfg.Timeout)
	defer cancel()
	issued, err := v.Sign(ctx, Request{CSR: csr, PublicKey: key.Public(), NotBefore: now, NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return tls.Certificate{}, err
	}
	out := tls.Certificate{PrivateKey: key, Leaf: issued.Leaf}
	for b, rest := pem.Decode(issued.ChainPEM); b != nil; b, rest = pem.Decode(rest) {
		out.Certificate = append(out.Certificate, b.Bytes)
	}
	return out, nil
}

// Ready is the signer's part of /readyz: nil while Vault takes acmed's
// token and role. After a failure it asks Vault again (a probe that signs
// nothing), at most every few seconds, so a fixed token or role, or an
// unsealed Vault, makes the replica ready again without an issuance.
func (v *Vault) Ready(ctx context.Context) error {
	return v.health.ready(ctx, v.cfg.now(), v.probe)
}

// probe calls sign-verbatim with an empty CSR: Vault checks the token,
// its policy and the role before the CSR, so "no CSR" (400, about the
// csr) means all three are in order, and nothing is issued.
func (v *Vault) probe(ctx context.Context) error {
	_, err := v.write(ctx, v.cfg.mount()+"/sign-verbatim/"+v.cfg.Role, map[string]any{"csr": ""})
	var ve *VaultError
	if errors.As(err, &ve) && ve.Status == http.StatusBadRequest && mentionsCSR(ve.Errors) {
		return nil
	}
	if err == nil {
		return nil
	}
	return fmt.Errorf("ca: vault: sign-verbatim/%s: %w", v.cfg.Role, err)
}

func mentionsCSR(errs []string) bool {
	for _, e := range errs {
		if strings.Contains(strings.ToLower(e), "csr") || strings.Contains(e, "certificate request") {
			return true
		}
	}
	return false
}

// vaultHealth is the last outcome of a call to Vault, for Ready.
type vaultHealth struct {
	mu  sync.Mutex
	err error
	at  time.Time
}

const probeEvery = 3 * time.Second

func (h *vaultHealth) record(now time.Time, err error) {
	var ve *VaultError
	if err != nil && (errors.Is(err, context.Canceled) || !errors.As(err, &ve) && !errors.Is(err, ErrUnavailable)) {
		// The client went away, or acmed refused the request before
		// asking Vault: that says nothing of Vault.
		return
	}
	h.mu.Lock()
	h.err, h.at = err, now
	h.mu.Unlock()
}

func (h *vaultHealth) ready(ctx context.Context, now time.Time, probe func(context.Context) error) error {
	h.mu.Lock()
	err, at := h.err, h.at
	h.mu.Unlock()
	if err == nil || now.Sub(at) < probeEvery {
		return err
	}
	perr := probe(ctx)
	h.record(now, perr)
	return perr
}
