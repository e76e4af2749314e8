package admin_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"io"
	stdlog "log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/admin"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage/embedded"
)

const token = "0123456789abcdef0123456789abcdef"

// noValidator is never asked: these tests validate no challenge.
type noValidator struct{}

func (noValidator) Validate(context.Context, string, acme.ChallengeType, acme.Identifier, string, string) (acme.Validation, error) {
	return acme.Validation{}, errors.New("no validation in admin tests")
}

// syncBuffer collects log lines written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testCA is a client-certificate CA made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: cert, key: key}
}

func (c *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// client issues a client certificate for cn.
func (c *testCA) client(t *testing.T, cn string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// env is an admin API over a real authority, embedded store and CA.
type env struct {
	srv   *httptest.Server
	auth  *authority.Authority
	store *embedded.Store
	logs  *syncBuffer
}

func newEnv(t *testing.T, tokenValue string, clientCAs *x509.CertPool) *env {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	signer, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(filepath.Join(dir, "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	auth, err := authority.New(authority.Config{Store: store, Signer: signer, Validator: noValidator{}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(admin.Config{Authority: auth, Token: tokenValue, ClientCAs: clientCAs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // refused handshakes are expected
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		srv.TLS.ClientCAs, srv.TLS.ClientAuth = clientCAs, tls.VerifyClientCertIfGiven
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &env{srv: srv, auth: auth, store: store, logs: logs}
}

// client trusts the test server; cert, if given, is sent.
func (e *env) client(certs ...tls.Certificate) *http.Client {
	tr := e.srv.Client().Transport.(*http.Transport).Clone()
	if len(certs) > 0 {
		// Sent whatever CAs the server asks for, as a client that
		// insists would.
		tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &certs[0], nil }
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func (e *env) addAccount(t *testing.T, id string) {
	t.Helper()
	a := &acme.Account{ID: id, Status: acme.StatusValid, Contact: []string{"mailto:" + id + "@example.com"}, KeyThumbprint: "tp-" + id, CreatedAt: time.Now().UTC()}
	if err := e.store.CreateAccount(t.Context(), a); err != nil {
		t.Fatal(err)
	}
}

// call sends one request and decodes its JSON body into a map.
func call(t *testing.T, c *http.Client, method, url, bearer string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q", method, url, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s %s: body %q is not a JSON object: %v", method, url, body, err)
	}
	return resp.StatusCode, m
}

func TestNewNeedsAuthentication(t *testing.T) {
	if _, err := admin.New(admin.Config{Authority: &authority.Authority{}}); err == nil {
		t.Fatal("admin.New with neither a token nor client CAs: no error")
	}
}

func TestTokenAuth(t *testing.T) {
	e := newEnv(t, token, nil)
	e.addAccount(t, "acct-1")
	c := e.client()
	url := e.srv.URL + admin.Prefix + "/accounts"
	for _, tc := range []struct {
		name, bearer string
		want         int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "not-the-token", http.StatusUnauthorized},
		{"token with a suffix", token + "x", http.StatusUnauthorized},
		{"right token", token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, c, "GET", url, tc.bearer)
			if status != tc.want {
				t.Fatalf("status %d, body %v; want %d", status, body, tc.want)
			}
			if status != http.StatusOK {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("refusal %v has no \"error\" message", body)
				}
			}
		})
	}
	if !strings.Contains(e.logs.String(), "event=admin.accounts.list caller=token") {
		t.Errorf("no audit line naming the token as caller:\n%s", e.logs.String())
	}
}

func TestClientCertAuth(t *testing.T) {
	good, other := newTestCA(t, "ops CA"), newTestCA(t, "someone else's CA")
	e := newEnv(t, "", good.pool())
	e.addAccount(t, "acct-1")
	url := e.srv.URL + admin.Prefix + "/accounts/acct-1/deactivate"

	t.Run("no certificate", func(t *testing.T) {
		if status, body := call(t, e.client(), "POST", url, ""); status != http.StatusUnauthorized {
			t.Fatalf("status %d, body %v; want 401", status, body)
		}
	})
	t.Run("a token when none is configured", func(t *testing.T) {
		if status, body := call(t, e.client(), "POST", url, token); status != http.StatusUnauthorized {
			t.Fatalf("status %d, body %v; want 401", status, body)
		}
	})
	t.Run("certificate from another CA", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(t.Context(), "POST", url, nil)
		resp, err := e.client(other.client(t, "mallory")).Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a certificate from another CA got status %d; want the handshake refused", resp.StatusCode)
		}
	})
	t.Run("certificate from the client CA", func(t *testing.T) {
		status, body := call(t, e.client(good.client(t, "alice")), "POST", url, "")
		if status != http.StatusOK || body["status"] != "deactivated" || body["id"] != "acct-1" {
			t.Fatalf("status %d, body %v; want 200 and the deactivated account", status, body)
		}
		if !strings.Contains(e.logs.String(), `event=admin.accounts.deactivate caller="cert:CN=alice" account=acct-1`) {
			t.Errorf("no audit line naming the certificate's subject:\n%s", e.logs.String())
		}
	})
	if strings.Contains(e.logs.String(), "mallory") {
		t.Error("a refused certificate reached the handler")
	}
}

func TestAccountsEndpoints(t *testing.T) {
	e := newEnv(t, token, nil)
	for _, id := range []string{"a1", "a2", "a3"} {
		e.addAccount(t, id)
	}
	c, base := e.client(), e.srv.URL+admin.Prefix
	for _, tc := range []struct {
		name, method, path string
		want               int
		check              func(t *testing.T, body map[string]any)
	}{
		{"list one page", "GET", "/accounts?limit=2", 200, func(t *testing.T, b map[string]any) {
			if got := len(b["accounts"].([]any)); got != 2 || b["next"] != "a2" {
				t.Errorf("got %d accounts, next %v; want 2 and a2", got, b["next"])
			}
		}},
		{"list the next page", "GET", "/accounts?limit=2&cursor=a2", 200, func(t *testing.T, b map[string]any) {
			accts := b["accounts"].([]any)
			if len(accts) != 1 || accts[0].(map[string]any)["id"] != "a3" || b["next"] != nil {
				t.Errorf("got %v; want only a3 and no next", b)
			}
		}},
		{"show has snake_case fields", "GET", "/accounts/a1", 200, func(t *testing.T, b map[string]any) {
			for _, f := range []string{"id", "status", "contact", "key_thumbprint", "terms_agreed", "created_at"} {
				if _, ok := b[f]; !ok {
					t.Errorf("field %q missing from %v", f, b)
				}
			}
		}},
		{"show a missing account", "GET", "/accounts/nope", 404, nil},
		{"bad limit", "GET", "/accounts?limit=x", 400, nil},
		{"limit too large", "GET", "/accounts?limit=100000", 400, nil},
		{"deactivate a missing account", "POST", "/accounts/nope/deactivate", 404, nil},
		{"deactivate by GET", "GET", "/accounts/a1/deactivate", 405, nil},
		{"backup by POST", "POST", "/backup", 405, nil},
		{"unknown endpoint", "GET", "/nothing", 404, nil},
		{"deactivate", "POST", "/accounts/a1/deactivate", 200, func(t *testing.T, b map[string]any) {
			if b["status"] != "deactivated" {
				t.Errorf("status %v; want deactivated", b["status"])
			}
		}},
		{"deactivate again changes nothing", "POST", "/accounts/a1/deactivate", 200, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, c, tc.method, base+tc.path, token)
			if status != tc.want {
				t.Fatalf("status %d, body %v; want %d", status, body, tc.want)
			}
			if status != 200 {
				if msg, _ := body["error"].(string); msg == "" {
					t.Errorf("error body %v has no message", body)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
}

// TestDeactivatedAccountCanDoNothing: after an operator deactivates an
// account, its key finds it no more (RFC 8555 §7.3.6); the kid-signed
// requests are refused by the API's account check (acme/api).
func TestDeactivatedAccountCanDoNothing(t *testing.T) {
	e := newEnv(t, token, nil)
	ctx := t.Context()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwk := &jose.JSONWebKey{Key: key.Public(), Algorithm: "ES256"}
	acct, created, err := e.auth.NewAccount(ctx, jwk, authority.NewAccountRequest{TermsAgreed: true})
	if err != nil || !created {
		t.Fatalf("NewAccount: %v, created %t", err, created)
	}
	if _, err := e.auth.AdminDeactivateAccount(ctx, "token", acct.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.auth.NewAccount(ctx, jwk, authority.NewAccountRequest{TermsAgreed: true})
	if !errors.Is(err, acme.ErrUnauthorized) {
		t.Fatalf("NewAccount with a deactivated account's key: %v; want unauthorized", err)
	}
}
