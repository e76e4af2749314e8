package authority_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage/embedded"
)

// The use-case tests run the Authority over the real embedded store in
// t.TempDir(), with in-process fakes of the network (fakeValidator) and
// of the CA (fakeSigner).

// errNotPerformed is what a validator says when it did not validate.
var errNotPerformed = errors.New("fake validator: not performed (no capacity)")

// fakeValidator answers "not performed" to its first notPerformed calls
// (all of them if it is negative), then the outcome.
type fakeValidator struct {
	mu           sync.Mutex
	notPerformed int
	outcome      acme.Validation
	calls        int
	keyAuths     []string
	accounts     []string
}

func (f *fakeValidator) Validate(ctx context.Context, accountID string, typ acme.ChallengeType, id acme.Identifier, token, keyAuth string) (acme.Validation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.keyAuths = append(f.keyAuths, keyAuth)
	f.accounts = append(f.accounts, accountID)
	if f.notPerformed < 0 || f.calls <= f.notPerformed {
		return acme.Validation{}, errNotPerformed
	}
	return f.outcome, nil
}

func (f *fakeValidator) set(notPerformed int, outcome acme.Validation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notPerformed, f.outcome, f.calls = notPerformed, outcome, 0
}

func (f *fakeValidator) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// fakeSigner issues certificates from an in-memory issuer, or fails.
type fakeSigner struct {
	key    *ecdsa.PrivateKey
	issuer *x509.Certificate
	mu     sync.Mutex
	fail   bool
	signed int
	// unavailable is how many more Signs fail as an HSM with a closed
	// session does: transiently, wrapping ca.ErrUnavailable.
	unavailable int
}

func newFakeSigner(t *testing.T) *fakeSigner {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fake issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSigner{key: key, issuer: issuer}
}

func (f *fakeSigner) Sign(ctx context.Context, req ca.Request) (*ca.Issued, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("fake signer: HSM unreachable")
	}
	if f.unavailable > 0 {
		f.unavailable--
		return nil, fmt.Errorf("%w: fake signer: session closed", ca.ErrUnavailable)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial, DNSNames: req.DNSNames, IPAddresses: req.IPAddresses,
		NotBefore: req.NotBefore, NotAfter: req.NotAfter}
	tmpl.CRLDistributionPoints = req.CRLDistributionPoints
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.issuer, req.PublicKey, f.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	f.signed++
	return &ca.Issued{Leaf: leaf, Serial: acme.SerialHex(leaf.SerialNumber),
		ChainPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// Intermediate names the issuer, as ca.Local does, so that the Authority
// knows the key identifier ARI certIDs carry.
func (f *fakeSigner) Intermediate() *x509.Certificate { return f.issuer }

func (f *fakeSigner) setFail(fail bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = fail
}

func (f *fakeSigner) setUnavailable(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unavailable = n
}

func (f *fakeSigner) signedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.signed
}

// syncBuffer is a log sink the job goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// events returns the audit events logged so far named event, decoded.
func (b *syncBuffer) events(t *testing.T, event string) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(b.buf.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == "audit" && m["event"] == event {
			out = append(out, m)
		}
	}
	return out
}

// env is an Authority over an embedded store file, with fakes.
type env struct {
	a     *authority.Authority
	store *embedded.Store
	path  string
	val   *fakeValidator
	sig   *fakeSigner
	logs  *syncBuffer
	cfg   authority.Config
	// wrap, if set, is what the Authority gets of the store.
	wrap func(authority.Store) authority.Store
}

// newEnv opens a store in t.TempDir() and an Authority on it; tune may
// change the Config before New.
func newEnv(t *testing.T, tune func(*authority.Config)) *env {
	t.Helper()
	e := &env{path: filepath.Join(t.TempDir(), "acmed.db"), val: &fakeValidator{}, sig: newFakeSigner(t), logs: &syncBuffer{}}
	e.cfg = authority.Config{
		Validator: e.val, Signer: e.sig,
		Logger:       slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		RetryBackoff: time.Millisecond,
	}
	if tune != nil {
		tune(&e.cfg)
	}
	e.open(t)
	return e
}

// open opens the store file and a fresh Authority on it; the store is
// closed at cleanup, after the Authority's request jobs.
func (e *env) open(t *testing.T) {
	t.Helper()
	store, err := embedded.Open(e.path, embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := e.cfg
	cfg.Store = store
	if e.wrap != nil {
		cfg.Store = e.wrap(store)
	}
	a, err := authority.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.a, e.store = a, store
	t.Cleanup(func() { a.Drain(); _ = store.Close() })
}

// restart is a process restart: the request jobs end, the store file is
// closed and opened again, with a new Authority on it.
func (e *env) restart(t *testing.T) {
	t.Helper()
	e.a.Drain()
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	e.open(t)
}

// run works the jobs Consume hands out until the test ends.
func (e *env) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	a := e.a
	go func() { _ = a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func newKey(t *testing.T) *jose.JSONWebKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jose.JSONWebKey{Key: k.Public()}
}

func (e *env) account(t *testing.T) *acme.Account {
	t.Helper()
	acct, _, err := e.a.NewAccount(t.Context(), newKey(t), authority.NewAccountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return acct
}

func dnsIDs(names ...string) []acme.Identifier {
	ids := make([]acme.Identifier, len(names))
	for i, n := range names {
		ids[i] = acme.Identifier{Type: acme.IdentifierDNS, Value: n}
	}
	return ids
}

func (e *env) order(t *testing.T, acct *acme.Account, names ...string) *authority.Order {
	t.Helper()
	o, err := e.a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs(names...)})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// validOrder is an order for names whose authorizations were all proved
// through the fake validator; it is ready.
func (e *env) validOrder(t *testing.T, acct *acme.Account, names ...string) *authority.Order {
	t.Helper()
	e.val.set(0, acme.Validation{})
	o := e.order(t, acct, names...)
	for _, az := range o.Authzs {
		e.respond(t, acct, az, acme.ChallengeHTTP01)
		e.waitAuthz(t, acct, az.ID, acme.StatusValid)
	}
	return o
}

// respond responds to az's challenge of type typ.
func (e *env) respond(t *testing.T, acct *acme.Account, az *acme.Authorization, typ acme.ChallengeType) *acme.Authorization {
	t.Helper()
	for _, ch := range az.Challenges {
		if ch.Type == typ {
			got, err := e.a.RespondChallenge(t.Context(), authority.CallerOf(acct), az.ID, ch.ID)
			if err != nil {
				t.Fatalf("RespondChallenge: %v", err)
			}
			return got
		}
	}
	t.Fatalf("authorization %s has no %s challenge", az.ID, typ)
	return nil
}

const waitFor = 10 * time.Second

// waitAuthz polls the authorization until it has status want.
func (e *env) waitAuthz(t *testing.T, acct *acme.Account, id string, want acme.Status) *acme.Authorization {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		az, err := e.a.Authorization(t.Context(), authority.CallerOf(acct), id)
		if err != nil {
			t.Fatal(err)
		}
		if az.Status == want {
			return az
		}
		if time.Now().After(deadline) {
			t.Fatalf("authorization %s is %s after %v, want %s", id, az.Status, waitFor, want)
		}
		time.Sleep(time.Millisecond) // a poll interval, not a wait for state
	}
}

// waitOrder polls the order until its status is not processing.
func (e *env) waitOrder(t *testing.T, acct *acme.Account, id string) *authority.Order {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		o, err := e.a.Order(t.Context(), authority.CallerOf(acct), id)
		if err != nil {
			t.Fatal(err)
		}
		if o.Status != acme.StatusProcessing {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s still processing after %v", id, waitFor)
		}
		time.Sleep(time.Millisecond)
	}
}

// csrFor is a CSR for names under a fresh key.
func csrFor(t *testing.T, names ...string) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// wantProblem fails unless err is a problem of type want (nil: no error).
func wantProblem(t *testing.T, what string, err error, want *acme.Problem) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: %v, want no error", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: %v, want %s", what, err, want.Type)
	}
}
