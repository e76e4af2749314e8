package api_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/challenges/challengetest"
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

// env is a real acmed API over HTTP on loopback with the embedded store,
// the built-in CA, and real DNS and http-01 peers.
type env struct {
	t      *testing.T
	base   string
	clock  *clock
	http01 *challengetest.HTTP01
	dns    *challengetest.DNS
	store  *embedded.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := startEnv(t, store, nil, nil)
	e.store = store
	return e
}

// startEnv serves the API over store, which the caller closes; ready is
// /readyz's check (nil: always ready), log the server's (nil: discarded);
// a validator given replaces the real one.
func startEnv(t *testing.T, store authority.Store, ready func(context.Context) error, log *slog.Logger, validator ...authority.Validator) *env {
	t.Helper()
	return startEnvWith(t, store, ready, log, func(c *authority.Config) {
		if len(validator) > 0 {
			c.Validator = validator[0]
		}
	})
}

// startEnvWith is startEnv with tune changing the Authority's Config.
func startEnvWith(t *testing.T, store authority.Store, ready func(context.Context) error, log *slog.Logger, tune func(*authority.Config)) *env {
	t.Helper()
	return startEnvAPI(t, store, ready, log, tune, nil)
}

// startEnvAPI is startEnvWith with tuneAPI (when not nil) changing the
// API's Config, given the CA.
func startEnvAPI(t *testing.T, store authority.Store, ready func(context.Context) error, log *slog.Logger,
	tune func(*authority.Config), tuneAPI func(*ca.Local, *api.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	signer, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	e := &env{t: t, clock: &clock{now: time.Now()}, http01: challengetest.StartHTTP01(t), dns: challengetest.StartDNS(t)}
	var v authority.Validator = challenges.New(challenges.Config{
		Resolver: challenges.NewResolver(e.dns.Addr), HTTPPort: e.http01.Port, Timeout: 5 * time.Second,
	})
	cfg := authority.Config{
		Store:     store,
		Signer:    signer,
		Validator: v,
		Now:       e.clock.Now,
		Logger:    log,
	}
	tune(&cfg)
	auth, err := authority.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = auth.Run(ctx); close(done) }()
	srv := httptest.NewUnstartedServer(nil)
	e.base = "http://" + srv.Listener.Addr().String()
	apiCfg := api.Config{Authority: auth, BaseURL: e.base, RootsPEM: signer.RootPEM(), Ready: ready, Logger: log}
	if tuneAPI != nil {
		tuneAPI(signer, &apiCfg)
	}
	srv.Config.Handler = api.New(apiCfg)
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
	})
	return e
}

func (e *env) url(path string) string { return e.base + path }

// nonce fetches a fresh nonce.
func (e *env) nonce() string {
	e.t.Helper()
	resp, err := http.Head(e.url("/acme/new-nonce"))
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Replay-Nonce")
}

// client signs requests as one ACME account, by hand, so tests can break
// any rule of the JWS on purpose.
type client struct {
	e   *env
	key crypto.Signer
	alg jose.SignatureAlgorithm
	kid string
}

func (e *env) newClient() *client {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	return &client{e: e, key: key, alg: jose.ES256}
}

// jwsOpts changes one thing about a signed request.
type jwsOpts struct {
	nonce  *string
	url    string
	useJWK bool
	extra  map[jose.HeaderKey]any
	key    crypto.Signer
	alg    jose.SignatureAlgorithm
	noKID  bool
	mutate func(map[string]any) // applied to the flattened JSON
	ctype  string
}

func (c *client) sign(url string, payload []byte, o jwsOpts) []byte {
	c.e.t.Helper()
	key, alg := c.key, c.alg
	if o.key != nil {
		key, alg = o.key, o.alg
	}
	nonce := c.e.nonce()
	if o.nonce != nil {
		nonce = *o.nonce
	}
	if o.url != "" {
		url = o.url
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	if nonce != "" {
		opts.ExtraHeaders["nonce"] = nonce
	}
	for k, v := range o.extra {
		opts.ExtraHeaders[k] = v
	}
	sk := jose.SigningKey{Algorithm: alg, Key: key}
	if o.useJWK || c.kid == "" {
		opts.EmbedJWK = true
	} else if !o.noKID {
		sk.Key = jose.JSONWebKey{Key: key, KeyID: c.kid}
	}
	signer, err := jose.NewSigner(sk, opts)
	if err != nil {
		c.e.t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		c.e.t.Fatal(err)
	}
	// go-jose leaves out an empty payload; RFC 7515 and ACME clients send "".
	var m map[string]any
	if err := json.Unmarshal([]byte(jws.FullSerialize()), &m); err != nil {
		c.e.t.Fatal(err)
	}
	if _, ok := m["payload"]; !ok {
		m["payload"] = ""
	}
	if o.mutate != nil {
		o.mutate(m)
	}
	body, _ := json.Marshal(m)
	return body
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) problem(t *testing.T) acme.Problem {
	t.Helper()
	var p acme.Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("status %d, body %q is not a problem: %v", r.status, r.body, err)
	}
	return p
}

func (c *client) postRaw(url string, body []byte, ctype string) *response {
	c.e.t.Helper()
	if ctype == "" {
		ctype = "application/jose+json"
	}
	resp, err := http.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *client) post(url string, payload any, o jwsOpts) *response {
	c.e.t.Helper()
	var raw []byte
	switch p := payload.(type) {
	case nil:
	case []byte:
		raw = p
	default:
		raw, _ = json.Marshal(p)
	}
	return c.postRaw(url, c.sign(url, raw, o), o.ctype)
}

// must posts and fails the test unless the status is want.
func (c *client) must(want int, url string, payload any, out any) *response {
	c.e.t.Helper()
	r := c.post(url, payload, jwsOpts{})
	if r.status != want {
		c.e.t.Fatalf("POST %s: status %d, want %d: %s", url, r.status, want, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			c.e.t.Fatal(err)
		}
	}
	return r
}

func (c *client) register() {
	c.e.t.Helper()
	r := c.must(http.StatusCreated, c.e.url("/acme/new-account"), map[string]any{"termsOfServiceAgreed": true}, nil)
	c.kid = r.header.Get("Location")
}

type order struct {
	Status         string            `json:"status"`
	Authorizations []string          `json:"authorizations"`
	Finalize       string            `json:"finalize"`
	Certificate    string            `json:"certificate"`
	Error          *acme.Problem     `json:"error"`
	Identifiers    []acme.Identifier `json:"identifiers"`
	Profile        string            `json:"profile"`
	url            string
}

type authz struct {
	Status     string `json:"status"`
	Challenges []struct {
		Type   string        `json:"type"`
		URL    string        `json:"url"`
		Token  string        `json:"token"`
		Status string        `json:"status"`
		Error  *acme.Problem `json:"error"`
	} `json:"challenges"`
}

func (c *client) newOrder(names ...string) *order {
	c.e.t.Helper()
	var ids []acme.Identifier
	for _, n := range names {
		ids = append(ids, acme.Identifier{Type: acme.IdentifierDNS, Value: n})
	}
	var o order
	r := c.must(http.StatusCreated, c.e.url("/acme/new-order"), map[string]any{"identifiers": ids}, &o)
	o.url = r.header.Get("Location")
	return &o
}

func (c *client) thumbprint() string {
	tp, err := acme.Thumbprint(&jose.JSONWebKey{Key: c.key.Public()})
	if err != nil {
		c.e.t.Fatal(err)
	}
	return tp
}

// authorize answers every http-01 challenge of o and waits for it to be
// valid, polling with a deadline.
func (c *client) authorize(o *order) {
	c.e.t.Helper()
	for _, u := range o.Authorizations {
		var az authz
		c.must(http.StatusOK, u, nil, &az)
		ch := az.Challenges[0]
		c.e.http01.Set(ch.Token, acme.KeyAuthorization(ch.Token, c.thumbprint()))
		c.must(http.StatusOK, ch.URL, map[string]any{}, nil)
		c.waitAuthz(u, "valid")
	}
}

func (c *client) waitAuthz(u, want string) *authz {
	c.e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var az authz
		c.must(http.StatusOK, u, nil, &az)
		if az.Status == want {
			return &az
		}
		if time.Now().After(deadline) {
			c.e.t.Fatalf("authorization %s is %s, want %s: %+v", u, az.Status, want, az)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func csrDER(t *testing.T, key crypto.Signer, cn string, names ...string) string {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(der)
}

func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func leafDER(t *testing.T, chain []byte) string {
	t.Helper()
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatalf("no PEM in %q", chain)
	}
	return base64.RawURLEncoding.EncodeToString(block.Bytes)
}
