package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/profile"
	"github.com/acmed/acmed/storage/embedded"
)

const (
	// profileCertValidity is --cert-validity in newProfileEnv: not the
	// default, so that the test sees the flag reach mtls and server.
	profileCertValidity = 100 * time.Hour
	svidID              = "spiffe://example.org/ns/payments/sa/api"
)

// newProfileEnv is a server with --eab optional, --cert-validity 100h, the
// built-in profiles and "p256only" (mtls taking ECDSA P-256 keys only), and
// the EAB keys "servers" (--profile server), "mtlsonly" (--profile mtls),
// "plain" (no restriction, no SPIFFE ID) and "svid" (SPIFFE ID svidID).
func newProfileEnv(t *testing.T) *eabEnv {
	t.Helper()
	custom := profile.Builtins(profileCertValidity)[0]
	custom.Name, custom.Description = "p256only", "mTLS certificate for ECDSA P-256 keys"
	custom.KeyTypes = []profile.KeyType{profile.ECDSAP256}
	set, err := profile.NewSet(profileCertValidity, []profile.Profile{custom}, "")
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := &eabEnv{env: startEnvWith(t, store, nil, nil, func(c *authority.Config) {
		c.EAB, c.CertValidity, c.Profiles = authority.EABOptional, profileCertValidity, set
	}), st: store}
	for _, k := range []*acme.EABKey{
		{KID: "servers", Name: "servers", Profiles: []string{profile.Server}},
		{KID: "mtlsonly", Name: "mtlsonly", Profiles: []string{profile.MTLS}},
		{KID: "plain", Name: "plain"},
		{KID: "svid", Name: "svid", SPIFFEID: svidID},
	} {
		k.HMAC, k.CreatedAt = eabSecret, e.clock.Now()
		if err := store.CreateEABKey(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// account is a client with a new account, bound to the EAB key kid ("":
// to none).
func (e *eabEnv) account(kid string) *client {
	e.t.Helper()
	c := e.newClient()
	if kid == "" {
		c.register()
		return c
	}
	if r := c.registerWith(binding(e.t, kid, eabSecret, jose.HS256, e.url("/acme/new-account"), c.key)); r.status != http.StatusCreated {
		e.t.Fatalf("registration bound to %s: %d %s", kid, r.status, r.body)
	}
	return c
}

// orderWith posts a new order for names with more payload fields
// (profile, notAfter).
func (c *client) orderWith(fields map[string]any, names ...string) *response {
	c.e.t.Helper()
	var ids []acme.Identifier
	for _, n := range names {
		ids = append(ids, acme.Identifier{Type: acme.IdentifierDNS, Value: n})
	}
	payload := map[string]any{"identifiers": ids}
	maps.Copy(payload, fields)
	return c.post(c.e.url("/acme/new-order"), payload, jwsOpts{})
}

// readyOrder creates the order and answers its challenges.
func (c *client) readyOrder(fields map[string]any, names ...string) *order {
	c.e.t.Helper()
	r := c.orderWith(fields, names...)
	var o order
	if r.status != http.StatusCreated {
		c.e.t.Fatalf("new order %v: %d %s", fields, r.status, r.body)
	}
	if err := json.Unmarshal(r.body, &o); err != nil {
		c.e.t.Fatal(err)
	}
	o.url = r.header.Get("Location")
	c.authorize(&o)
	return &o
}

// finalizeChain finalizes o with csr, waits for the certificate, and
// returns the order as it ends and the chain in DER, leaf first.
func (c *client) finalizeChain(o *order, csr string) (*order, [][]byte) {
	c.e.t.Helper()
	var got order
	c.must(http.StatusOK, o.Finalize, map[string]string{"csr": csr}, &got)
	deadline := time.Now().Add(10 * time.Second)
	for got.Status == "processing" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		c.must(http.StatusOK, o.url, nil, &got)
	}
	if got.Status != "valid" {
		c.e.t.Fatalf("finalized order is %s: %+v", got.Status, got.Error)
	}
	pemChain := c.must(http.StatusOK, got.Certificate, nil, nil).body
	var chain [][]byte
	for b, rest := pem.Decode(pemChain); b != nil; b, rest = pem.Decode(rest) {
		chain = append(chain, b.Bytes)
	}
	if len(chain) == 0 {
		c.e.t.Fatalf("certificate %q holds no PEM", pemChain)
	}
	return &got, chain
}

// csrWith is a CSR for names whose URI SANs are uris.
func csrWith(t *testing.T, key crypto.Signer, uris []string, names ...string) string {
	t.Helper()
	tmpl := &x509.CertificateRequest{DNSNames: names}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

func genKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch kind {
	case "p256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p224":
		k, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "rsa1024":
		k, err = rsa.GenerateKey(rand.Reader, 1024)
	case "rsa2048":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ed25519":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("no key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestProfilesDirectory: meta.profiles is an object of description
// strings (what lego decodes), and names the built-ins.
func TestProfilesDirectory(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.url("/directory"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	var dir struct {
		Meta struct {
			Profiles map[string]json.RawMessage `json:"profiles"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(body, &dir); err != nil {
		t.Fatalf("directory %s: %v", body, err)
	}
	names := slices.Sorted(maps.Keys(dir.Meta.Profiles))
	if want := []string{"mtls", "server", "shortlived", "spiffe"}; !slices.Equal(names, want) {
		t.Fatalf("meta.profiles names %v, want %v", names, want)
	}
	for name, raw := range dir.Meta.Profiles {
		var desc string
		if err := json.Unmarshal(raw, &desc); err != nil || desc == "" {
			t.Errorf("meta.profiles[%q] is %s, want a non-empty string", name, raw)
		}
	}
}

// TestProfileCertificates: each profile's certificate has its shape: the
// order names the effective profile from new-order to valid, and the leaf
// has the profile's EKUs and lifetime, backdated one minute from issuance
// on the test's clock, which stands still.
func TestProfileCertificates(t *testing.T) {
	e := newProfileEnv(t)
	now := e.clock.Now()
	serverAuth := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverAndClient := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for i, tc := range []struct {
		name     string
		kid      string // EAB key of the account; "" none
		profile  string // asked for; "" none
		key      string
		notAfter time.Duration // asked for, from now; 0 none
		want     string
		eku      []x509.ExtKeyUsage
		life     time.Duration // notAfter - notBefore
	}{
		{"no profile is mtls", "", "", "p256", 0, "mtls", serverAndClient, profileCertValidity + time.Minute},
		{"mtls", "", "mtls", "rsa2048", 0, "mtls", serverAndClient, profileCertValidity + time.Minute},
		{"server", "", "server", "p256", 0, "server", serverAuth, profileCertValidity + time.Minute},
		{"shortlived", "", "shortlived", "p256", 0, "shortlived", serverAndClient, 24 * time.Hour},
		{"shortlived with notAfter within its max", "", "shortlived", "p256", 12 * time.Hour, "shortlived", serverAndClient, 12*time.Hour + time.Minute},
		{"key allowing server only, no profile asked", "servers", "", "p256", 0, "server", serverAuth, profileCertValidity + time.Minute},
		{"Ed25519 CSR", "", "", "ed25519", 0, "mtls", serverAndClient, profileCertValidity + time.Minute},
		{"custom profile, its key type", "", "p256only", "p256", 0, "p256only", serverAndClient, profileCertValidity + time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.account(tc.kid)
			name := fmt.Sprintf("c%d.profiles.example", i)
			fields := map[string]any{}
			if tc.profile != "" {
				fields["profile"] = tc.profile
			}
			if tc.notAfter != 0 {
				fields["notAfter"] = now.Add(tc.notAfter).UTC().Format(time.RFC3339)
			}
			o := c.readyOrder(fields, name)
			if o.Profile != tc.want {
				t.Fatalf("new order's profile %q, want %q", o.Profile, tc.want)
			}
			fin, chain := c.finalizeChain(o, csrWith(t, genKey(t, tc.key), nil, name))
			if fin.Profile != tc.want {
				t.Fatalf("valid order's profile %q, want %q", fin.Profile, tc.want)
			}
			leaf, err := x509.ParseCertificate(chain[0])
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(leaf.ExtKeyUsage, tc.eku) {
				t.Errorf("extended key usages %v, want %v", leaf.ExtKeyUsage, tc.eku)
			}
			if got := leaf.NotAfter.Sub(leaf.NotBefore); got != tc.life {
				t.Errorf("notAfter - notBefore = %s, want %s", got, tc.life)
			}
			if want := now.Add(-time.Minute).Truncate(time.Second); !leaf.NotBefore.Equal(want) {
				t.Errorf("notBefore %s, want issuance less 1m: %s", leaf.NotBefore, want)
			}
			if leaf.IsCA || len(leaf.URIs) != 0 || !slices.Equal(leaf.DNSNames, []string{name}) {
				t.Errorf("leaf: CA %v, URIs %v, DNS names %v; want a leaf for %s alone", leaf.IsCA, leaf.URIs, leaf.DNSNames, name)
			}
		})
	}
}

// TestProfileRefused: each rule of the profiles refuses with its problem
// and a detail naming the rule; a refused CSR leaves the order ready.
func TestProfileRefused(t *testing.T) {
	e := newProfileEnv(t)
	now := e.clock.Now()
	after := func(d time.Duration) string { return now.Add(d).UTC().Format(time.RFC3339) }
	for i, tc := range []struct {
		name   string
		kid    string
		fields map[string]any // of the new order
		key    string         // the CSR's; "": refused at new-order
		uris   []string       // the CSR's
		typ    string
		detail string
	}{
		{"unknown profile", "", map[string]any{"profile": "nosuch"}, "", nil,
			"invalidProfile", `profile "nosuch" is not offered; the directory's meta.profiles lists those that are`},
		{"profile not on the key's list", "mtlsonly", map[string]any{"profile": "server"}, "", nil,
			"invalidProfile", `profile "server" is not allowed for this account; its external account binding key allows [mtls]`},
		{"spiffe, no EAB key", "", map[string]any{"profile": "spiffe"}, "", nil,
			"invalidProfile", `profile "spiffe" issues SPIFFE IDs, and this account's external account binding key carries none`},
		{"spiffe, EAB key without a SPIFFE ID", "plain", map[string]any{"profile": "spiffe"}, "", nil,
			"invalidProfile", `profile "spiffe" issues SPIFFE IDs, and this account's external account binding key carries none`},
		{"notAfter beyond shortlived's max", "", map[string]any{"profile": "shortlived", "notAfter": after(48 * time.Hour)}, "", nil,
			"malformed", `is beyond the longest validity allowed: at most 24h0m0s from notBefore (profile "shortlived")`},
		{"notAfter beyond mtls's max", "", map[string]any{"notAfter": after(200 * time.Hour)}, "", nil,
			"malformed", `is beyond the longest validity allowed: at most 100h1m0s from notBefore (profile "mtls")`},
		{"P-224 key", "", nil, "p224", nil,
			"badPublicKey", `ECDSA curve P-224: profile "mtls" takes ecdsa-p256, ecdsa-p384, rsa (2048 to 4096 bits), ed25519`},
		{"RSA 1024 key", "", nil, "rsa1024", nil,
			"badPublicKey", `RSA key of 1024 bits: profile "mtls" takes 2048 to 4096 bits`},
		{"RSA key, custom profile of ecdsa-p256 only", "", map[string]any{"profile": "p256only"}, "rsa2048", nil,
			"badPublicKey", `rsa key: profile "p256only" takes ecdsa-p256`},
		{"URI SAN under mtls", "", nil, "p256", []string{"spiffe://example.org/ns/payments/sa/api"},
			"badCSR", `profile "mtls" issues no URI SANs`},
		{"URI SAN under server", "", map[string]any{"profile": "server"}, "p256", []string{"https://example.org/"},
			"badCSR", `CSR asks for URI "https://example.org/"; profile "server" issues no URI SANs`},
		{"another URI under spiffe", "svid", map[string]any{"profile": "spiffe"}, "p256", []string{"spiffe://example.org/ns/payments/sa/other"},
			"badCSR", `CSR asks for URI "spiffe://example.org/ns/payments/sa/other"; profile "spiffe" puts only the account's SPIFFE ID "` + svidID + `" in`},
		{"the SPIFFE ID and another URI under spiffe", "svid", map[string]any{"profile": "spiffe"}, "p256", []string{svidID, "spiffe://example.org/x"},
			"badCSR", `CSR asks for URI "spiffe://example.org/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := e.account(tc.kid)
			name := fmt.Sprintf("r%d.profiles.example", i)
			var r *response
			var o *order
			if tc.key == "" {
				r = c.orderWith(tc.fields, name)
			} else {
				o = c.readyOrder(tc.fields, name)
				r = c.post(o.Finalize, map[string]string{"csr": csrWith(t, genKey(t, tc.key), tc.uris, name)}, jwsOpts{})
			}
			problemType(t, r, http.StatusBadRequest, tc.typ)
			if p := r.problem(t); p.Status != http.StatusBadRequest || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("problem status %d, detail %q; want 400 and a detail with %q", p.Status, p.Detail, tc.detail)
			}
			if o != nil {
				var still order
				c.must(http.StatusOK, o.url, nil, &still)
				if still.Status != "ready" {
					t.Fatalf("order after a refused CSR is %s, want ready", still.Status)
				}
			}
		})
	}
}

// TestSPIFFESVID: an account bound to an EAB key with a SPIFFE ID gets,
// under the spiffe profile, an X509-SVID that the real SPIFFE library
// verifies against acmed's root (served at /roots.pem) as the trust
// domain's bundle, whether its CSR asks for no URI or for that ID.
func TestSPIFFESVID(t *testing.T) {
	e := newProfileEnv(t)
	now := e.clock.Now()
	id := spiffeid.RequireFromString(svidID)
	bundle := x509bundle.FromX509Authorities(id.TrustDomain(), servedRoots(t, e.env))
	c := e.account("svid")
	const name = "api.payments.example"
	for _, tc := range []struct {
		name string
		key  string
		uris []string
	}{
		{"CSR without URI", "p256", nil},
		{"CSR with the account's SPIFFE ID", "p256", []string{svidID}},
		{"RSA key", "rsa2048", nil},
		{"Ed25519 key", "ed25519", []string{svidID}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := c.readyOrder(map[string]any{"profile": "spiffe"}, name)
			if o.Profile != "spiffe" {
				t.Fatalf("order's profile %q, want spiffe", o.Profile)
			}
			_, chain := c.finalizeChain(o, csrWith(t, genKey(t, tc.key), tc.uris, name))
			got, verified, err := x509svid.ParseAndVerify(chain, bundle)
			if err != nil {
				t.Fatalf("go-spiffe refuses the certificate as an X509-SVID: %v", err)
			}
			if got != id {
				t.Fatalf("SVID ID %s, want %s", got, id)
			}
			leaf := verified[0][0]
			if len(leaf.URIs) != 1 || leaf.URIs[0].String() != svidID {
				t.Errorf("URI SANs %v, want exactly %s", leaf.URIs, svidID)
			}
			if !slices.Equal(leaf.DNSNames, []string{name}) {
				t.Errorf("DNS names %v, want %s", leaf.DNSNames, name)
			}
			if leaf.IsCA || leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 || leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
				t.Errorf("CA %v, key usage %b: want a leaf with digitalSignature", leaf.IsCA, leaf.KeyUsage)
			}
			if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
				t.Errorf("extended key usages %v, want serverAuth and clientAuth", leaf.ExtKeyUsage)
			}
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life != 24*time.Hour || !leaf.NotBefore.Equal(now.Add(-time.Minute).Truncate(time.Second)) {
				t.Errorf("valid from %s for %s, want from issuance less 1m for 24h", leaf.NotBefore, life)
			}
		})
	}
	// The same account without a profile gets the default, with no URI.
	o := c.readyOrder(nil, name)
	if o.Profile != "mtls" {
		t.Fatalf("order without a profile: %q, want mtls", o.Profile)
	}
	_, chain := c.finalizeChain(o, csrWith(t, genKey(t, "p256"), nil, name))
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.URIs) != 0 {
		t.Fatalf("mtls certificate of a SPIFFE account has URIs %v, want none", leaf.URIs)
	}
}

// servedRoots are the certificates of the server's /roots.pem.
func servedRoots(t *testing.T, e *env) []*x509.Certificate {
	t.Helper()
	resp, err := http.Get(e.url("/roots.pem"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
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
