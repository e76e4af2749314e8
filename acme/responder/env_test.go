package responder_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/storage/embedded"
)

// clock is a test clock that only moves when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a responder over HTTP on loopback, answering from a real
// authority over the embedded store, for the built-in CA.
type env struct {
	t     testing.TB
	url   string // the responder's URL (…/ocsp)
	ca    *ca.Local
	auth  *authority.Authority
	store *embedded.Store
	clock *clock
}

// newEnv starts a responder; tune, if given, changes its Config (the
// Signer is the CA itself unless tune sets another).
func newEnv(t testing.TB, tune ...func(*responder.Config, *ca.Local)) *env {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now().UTC().Truncate(time.Second)}
	l, err := ca.Load(dir, ca.Config{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	auth, err := authority.New(authority.Config{
		Store: store, Signer: l, Validator: challenges.New(challenges.Config{}), Now: clk.Now, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := responder.Config{Issuer: l.Intermediate(), Signer: l, Lookup: auth, Now: clk.Now, Logger: quiet}
	for _, f := range tune {
		f(&cfg, l)
	}
	r, err := responder.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Behind a ServeMux as behind the ACME router: Route must reach
	// the responder first.
	next := http.NewServeMux()
	next.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not the responder", http.StatusTeapot) })
	srv := httptest.NewServer(responder.Route(r, next))
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL + responder.Path, ca: l, auth: auth, store: store, clock: clk}
}

// leaf is a certificate the CA issued and the store holds.
type leaf struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer
}

// issue signs a leaf for name and records it as issuance does.
func (e *env) issue(name string) leaf {
	e.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	issued, err := e.ca.Sign(context.Background(), ca.Request{
		PublicKey: key.Public(), DNSNames: []string{name}, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.store.PutCertificate(context.Background(), &acme.Certificate{
		Serial: issued.Serial, AccountID: "acct", OrderID: "order-" + issued.Serial, ChainPEM: issued.ChainPEM,
		Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: name}},
		NotBefore:   issued.Leaf.NotBefore, NotAfter: issued.Leaf.NotAfter, Profile: "mtls",
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return leaf{cert: issued.Leaf, der: issued.Leaf.Raw, key: key}
}

// revoke revokes l as a client signing with the certificate's key would
// (RFC 8555 §7.6).
func (e *env) revoke(l leaf, reason int) {
	e.t.Helper()
	err := e.auth.Revoke(context.Background(), authority.RevokeRequest{
		CertDER: l.der, Reason: reason, Key: &jose.JSONWebKey{Key: l.key.Public()},
	})
	if err != nil {
		e.t.Fatalf("revoke: %v", err)
	}
}

// request is the DER OCSP request for cert, naming the issuer with hash.
func request(t testing.TB, cert, issuer *x509.Certificate, hash crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// reply is one HTTP answer of the responder.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (e *env) post(der []byte) reply {
	e.t.Helper()
	resp, err := http.Post(e.url, "application/ocsp-request", bytes.NewReader(der))
	return e.read(resp, err)
}

func (e *env) get(der []byte) reply {
	e.t.Helper()
	return e.getPath("/" + base64.StdEncoding.EncodeToString(der))
}

// getPath GETs the responder's URL followed by rest, as written.
func (e *env) getPath(rest string) reply {
	e.t.Helper()
	resp, err := http.Get(e.url + rest)
	return e.read(resp, err)
}

func (e *env) read(resp *http.Response, err error) reply {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// parse checks an HTTP answer is a successful OCSP response about cert,
// signed for the issuer, and returns it.
func (e *env) parse(r reply, cert *x509.Certificate) *ocsp.Response {
	e.t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/ocsp-response" {
		e.t.Fatalf("HTTP %d, Content-Type %q, want 200 application/ocsp-response", r.status, r.header.Get("Content-Type"))
	}
	resp, err := ocsp.ParseResponseForCert(r.body, cert, e.ca.Intermediate())
	if err != nil {
		e.t.Fatalf("parse OCSP response: %v", err)
	}
	if resp.SerialNumber.Cmp(cert.SerialNumber) != 0 {
		e.t.Fatalf("response for serial %x, asked about %x", resp.SerialNumber, cert.SerialNumber)
	}
	return resp
}

// errorStatus checks an HTTP answer is an OCSP error response and returns
// its status.
func (e *env) errorStatus(r reply) ocsp.ResponseStatus {
	e.t.Helper()
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/ocsp-response" {
		e.t.Fatalf("HTTP %d, Content-Type %q, want 200 application/ocsp-response", r.status, r.header.Get("Content-Type"))
	}
	_, err := ocsp.ParseResponse(r.body, nil)
	re, ok := err.(ocsp.ResponseError)
	if !ok {
		e.t.Fatalf("want an OCSP error response, got %v", err)
	}
	return re.Status
}
