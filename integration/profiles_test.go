package integration

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
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

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"
	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// internalWeb is a custom profile as an operator writes it: ECDSA keys
// only, serverAuth only, 30 days.
const internalWeb = `
profiles:
  internal-web:
    description: "web servers on the corporate network, ECDSA only, 30 days"
    default_validity: 720h
    ext_key_usages: [serverAuth]
    key_usages: [digitalSignature]
    key_types: [ecdsa-p256, ecdsa-p384]
`

const frontendID = "spiffe://acmed.test/ns/web/sa/frontend"

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestProfilesSVIDAndCustom runs acmed with a config file holding a custom
// profile and the admin API. An account bound to an EAB key made by
// `acmed admin eab create --profile spiffe --spiffe-id …` gets X509-SVIDs,
// which go-spiffe verifies against the root acmed serves, both when it
// asks for the spiffe profile and when it asks for none (the key's only
// profile is its default); another account gets the custom profile's
// shape, and its RSA key is refused. An EAB key for a profile acmed lacks
// is refused in one line.
func TestProfilesSVIDAndCustom(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tokenFile := writeToken(t, 0o600)
	dns := challengetest.StartDNS(t)
	h := challengetest.StartHTTP01(t)
	s := startAcmed(t, t.TempDir(), "--config", writeFile(t, "acmed.yaml", internalWeb),
		"--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile,
		"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port))

	var dir struct {
		Meta struct {
			Profiles map[string]string `json:"profiles"`
		} `json:"meta"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, s, s.dir)), &dir); err != nil {
		t.Fatalf("directory: %v", err)
	}
	for _, name := range []string{"mtls", "server", "shortlived", "spiffe", "internal-web"} {
		if dir.Meta.Profiles[name] == "" {
			t.Errorf("meta.profiles %v has no %s", dir.Meta.Profiles, name)
		}
	}

	var k adminEABKey
	adminJSON(t, s, tokenFile, &k, "eab", "create", "--name", "frontend", "--profile", "spiffe", "--spiffe-id", frontendID)
	secret, err := base64.RawURLEncoding.DecodeString(k.HMAC)
	if err != nil {
		t.Fatal(err)
	}
	svidClient := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	acct, err := svidClient.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{KID: k.KID, Key: secret}}, acme.AcceptTOS)
	if err != nil {
		t.Fatalf("register with the key: %v", err)
	}
	id := spiffeid.RequireFromString(frontendID)
	bundle := x509bundle.FromX509Authorities(id.TrustDomain(), servedRoots(t, s))
	for _, tc := range []struct {
		name    string
		profile string
	}{{"profile spiffe", "spiffe"}, {"no profile: the key's", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			const name = "frontend.web.test"
			var o *acme.Order
			if tc.profile == "" {
				// x/crypto/acme, like certbot 2, sends no profile.
				if o, err = svidClient.AuthorizeOrder(ctx, acme.DomainIDs(name)); err != nil {
					t.Fatal(err)
				}
			} else {
				o = orderProfile(t, ctx, s, svidClient, acct.URI, tc.profile, name)
			}
			answerHTTP01(t, ctx, svidClient, h, o)
			der, err := finalize(ctx, svidClient, o, newKey(t), name)
			if err != nil {
				t.Fatalf("finalize: %v", err)
			}
			got, chains, err := x509svid.ParseAndVerify(der, bundle)
			if err != nil {
				t.Fatalf("go-spiffe refuses the certificate as an X509-SVID: %v", err)
			}
			leaf := chains[0][0]
			switch {
			case got != id:
				t.Errorf("SVID ID %s, want %s", got, id)
			case len(leaf.URIs) != 1 || !slices.Equal(leaf.DNSNames, []string{name}):
				t.Errorf("URI SANs %v, DNS names %v: want %s and %s", leaf.URIs, leaf.DNSNames, frontendID, name)
			case leaf.IsCA || leaf.KeyUsage != x509.KeyUsageDigitalSignature:
				t.Errorf("CA %v, key usage %b: want a leaf with digitalSignature", leaf.IsCA, leaf.KeyUsage)
			case !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}):
				t.Errorf("extended key usages %v, want serverAuth and clientAuth", leaf.ExtKeyUsage)
			case leaf.NotAfter.Sub(leaf.NotBefore) != 24*time.Hour:
				t.Errorf("valid for %s, want 24h", leaf.NotAfter.Sub(leaf.NotBefore))
			}
		})
	}

	// Another account, the custom profile.
	web := newAccount(t, ctx, s)
	webAcct, err := web.GetReg(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	const name = "intranet.corp.test"
	o := orderProfile(t, ctx, s, web, webAcct.URI, "internal-web", name)
	answerHTTP01(t, ctx, web, h, o)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := finalize(ctx, web, o, rsaKey, name); !isProblem(err, "badPublicKey") || !strings.Contains(err.Error(), `profile "internal-web" takes ecdsa-p256, ecdsa-p384`) {
		t.Fatalf("RSA CSR under internal-web: %v, want badPublicKey naming the key types", err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := finalize(ctx, web, o, p384, name)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	leaf := verifyChain(t, s, der, name)
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) || leaf.KeyUsage != x509.KeyUsageDigitalSignature ||
		leaf.NotAfter.Sub(leaf.NotBefore) != 720*time.Hour || len(leaf.URIs) != 0 {
		t.Fatalf("internal-web certificate: EKU %v, key usage %b, valid %s, URIs %v; want serverAuth, digitalSignature, 720h, none",
			leaf.ExtKeyUsage, leaf.KeyUsage, leaf.NotAfter.Sub(leaf.NotBefore), leaf.URIs)
	}

	stdout, stderr, err := adminCLI(t, s, tokenFile, "eab", "create", "--name", "x", "--profile", "nosuch")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("eab create --profile nosuch: %v (stdout %q), want a non-zero exit", err, stdout)
	}
	if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, `profile "nosuch": no such profile`) {
		t.Fatalf("eab create --profile nosuch: stderr %q, want one line naming the profile", stderr)
	}
}

// TestProfilesConfigBroken: acmed serve with a config file whose profile
// cannot work exits non-zero, in one line naming the file and the setting.
func TestProfilesConfigBroken(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"bad key type", "profiles:\n  web:\n    key_types: [dsa]\n", `profile "web": key_types: "dsa" is not one of`},
		{"unknown setting", "profiles:\n  web:\n    key_type: [ecdsa-p256]\n", `line 3: profile "web": unknown setting "key_type"`},
		{"max below default", "profiles:\n  web:\n    default_validity: 48h\n    max_validity: 24h\n", `profile "web": max_validity 24h0m0s: must be at least default_validity`},
		{"spiffe without dns", "profiles:\n  svid:\n    spiffe: true\n    identifier_types: [ip]\n", `profile "svid": spiffe: an X509-SVID profile must allow dns identifiers`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, "acmed.yaml", tc.body)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			// Were the config accepted, acmed would serve until the
			// context's end kills it, and the exit check fails.
			cmd := exec.CommandContext(ctx, acmedBinary, "serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0", "--config", file)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("acmed serve: %v, want a non-zero exit\n%s", err, out)
			}
			msg := strings.TrimSpace(string(out))
			if strings.Contains(msg, "\n") || !strings.Contains(msg, "config file "+file) || !strings.Contains(msg, tc.want) {
				t.Fatalf("acmed serve said %q; want one line naming %s and %q", msg, file, tc.want)
			}
		})
	}
}

// orderProfile creates an order for names under profile with a JWS of its
// own, since golang.org/x/crypto/acme cannot send one, checks the order
// echoes it, and reads it back with c.
func orderProfile(t *testing.T, ctx context.Context, s *server, c *acme.Client, kid, profile string, names ...string) *acme.Order {
	t.Helper()
	var ids []map[string]string
	for _, n := range names {
		ids = append(ids, map[string]string{"type": "dns", "value": n})
	}
	payload, err := json.Marshal(map[string]any{"identifiers": ids, "profile": profile})
	if err != nil {
		t.Fatal(err)
	}
	u := strings.TrimSuffix(s.dir, "/directory") + "/acme/new-order"
	status, loc, body := postJWS(t, s, c.Key, kid, u, payload)
	var echo struct {
		Profile string `json:"profile"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &echo) != nil || echo.Profile != profile {
		t.Fatalf("new order with profile %q: %d %s", profile, status, body)
	}
	o, err := c.GetOrder(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// postJWS posts payload to u signed by the account (key, kid) and returns
// the status, Location and body.
func postJWS(t *testing.T, s *server, key crypto.Signer, kid, u string, payload []byte) (int, string, []byte) {
	t.Helper()
	hc := s.httpClient()
	resp, err := hc.Head(strings.TrimSuffix(s.dir, "/directory") + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": resp.Header.Get("Replay-Nonce"), "url": u, "kid": kid},
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = hc.Post(u, "application/jose+json", strings.NewReader(jws.FullSerialize()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Location"), body
}

// answerHTTP01 answers o's http-01 challenges and waits for o to be ready.
func answerHTTP01(t *testing.T, ctx context.Context, c *acme.Client, h *challengetest.HTTP01, o *acme.Order) {
	t.Helper()
	authorize(t, ctx, c, o, "http-01", func(_ *acme.Authorization, chal *acme.Challenge) {
		resp, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(chal.Token, resp)
	})
	if _, err := c.WaitOrder(ctx, o.URI); err != nil {
		t.Fatalf("order not ready: %v", err)
	}
}

// finalize finalizes o with a CSR of key for names and returns the chain,
// or the error.
func finalize(ctx context.Context, c *acme.Client, o *acme.Order, key crypto.Signer, names ...string) ([][]byte, error) {
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		return nil, err
	}
	der, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	return der, err
}

// servedRoots are the certificates of acmed's /roots.pem, fetched over
// TLS verified with root.pem.
func servedRoots(t *testing.T, s *server) []*x509.Certificate {
	t.Helper()
	body := []byte(httpGet(t, s, strings.TrimSuffix(s.dir, "/directory")+"/roots.pem"))
	var roots []*x509.Certificate
	for b, rest := pem.Decode(body); b != nil; b, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		roots = append(roots, c)
	}
	if len(roots) == 0 {
		t.Fatalf("/roots.pem holds no certificate: %q", body)
	}
	return roots
}

func httpGet(t *testing.T, s *server, u string) string {
	t.Helper()
	resp, err := s.httpClient().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, resp.StatusCode, err)
	}
	return string(body)
}
