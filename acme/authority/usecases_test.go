package authority_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

func TestNewAccount(t *testing.T) {
	const tos = "https://acme.internal/terms"
	tests := []struct {
		name        string
		tos         string
		req         authority.NewAccountRequest
		existing    bool // register the key first
		want        *acme.Problem
		wantCreated bool
	}{
		{"new", "", authority.NewAccountRequest{Contact: []string{"mailto:ops@example.com"}}, false, nil, true},
		{"repeated registration returns the account", "", authority.NewAccountRequest{}, true, nil, false},
		{"only return existing, unknown key", "", authority.NewAccountRequest{OnlyReturnExisting: true}, false, acme.ErrAccountDoesNotExist, false},
		{"only return existing, known key", "", authority.NewAccountRequest{OnlyReturnExisting: true}, true, nil, false},
		{"terms not agreed", tos, authority.NewAccountRequest{}, false, acme.ErrMalformed, false},
		{"terms agreed", tos, authority.NewAccountRequest{TermsAgreed: true}, false, nil, true},
		{"unsupported contact", "", authority.NewAccountRequest{Contact: []string{"tel:+15555550100"}}, false, acme.ErrUnsupportedContact, false},
		{"invalid contact", "", authority.NewAccountRequest{Contact: []string{"mailto:not an address"}}, false, acme.ErrInvalidContact, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *authority.Config) { c.TermsOfService = tt.tos })
			key := newKey(t)
			var first *acme.Account
			if tt.existing {
				var err error
				if first, _, err = e.a.NewAccount(t.Context(), key, authority.NewAccountRequest{TermsAgreed: true}); err != nil {
					t.Fatal(err)
				}
			}
			acct, created, err := e.a.NewAccount(t.Context(), key, tt.req)
			wantProblem(t, "NewAccount", err, tt.want)
			if err != nil {
				return
			}
			if created != tt.wantCreated || acct.Status != acme.StatusValid {
				t.Fatalf("created %v, status %s; want created %v, valid", created, acct.Status, tt.wantCreated)
			}
			if first != nil && acct.ID != first.ID {
				t.Fatalf("account %s, want the existing %s", acct.ID, first.ID)
			}
			if byKey, err := e.a.AccountByKey(t.Context(), key); err != nil || byKey.ID != acct.ID {
				t.Fatalf("AccountByKey = %v, %v; want %s", byKey, err, acct.ID)
			}
			if n := len(e.logs.events(t, "account.create")); n != 1 {
				t.Fatalf("%d account.create audit events, want 1", n)
			}
		})
	}
}

func TestNewOrder(t *testing.T) {
	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("n%d.example", i)
	}
	tests := []struct {
		name       string
		reuseOff   bool
		validFirst []string // names the account proved before
		names      []string
		want       *acme.Problem
		wantStatus acme.Status
		wantAuthzs int
	}{
		{"one name", false, nil, []string{"a.example"}, nil, acme.StatusPending, 1},
		{"names are normalized and deduplicated", false, nil, []string{"A.example", "a.example", "b.example"}, nil, acme.StatusPending, 2},
		{"wildcard", false, nil, []string{"*.a.example"}, nil, acme.StatusPending, 1},
		{"no identifiers", false, nil, nil, acme.ErrMalformed, "", 0},
		{"a bad name", false, nil, []string{"a.example", "bad_name.example"}, acme.ErrRejectedIdentifier, "", 0},
		{"too many names", false, nil, tooMany, acme.ErrRejectedIdentifier, "", 0},
		{"valid authorization reused", false, []string{"a.example"}, []string{"a.example"}, nil, acme.StatusReady, 1},
		{"reuse off", true, []string{"a.example"}, []string{"a.example"}, nil, acme.StatusPending, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *authority.Config) { c.DisableAuthzReuse = tt.reuseOff })
			acct := e.account(t)
			var proved *authority.Order
			if tt.validFirst != nil {
				proved = e.validOrder(t, acct, tt.validFirst...)
			}
			o, err := e.a.NewOrder(t.Context(), acct, authority.NewOrderRequest{Identifiers: dnsIDs(tt.names...)})
			wantProblem(t, "NewOrder", err, tt.want)
			if err != nil {
				return
			}
			if o.Status != tt.wantStatus || len(o.Authzs) != tt.wantAuthzs || len(o.Identifiers) != tt.wantAuthzs {
				t.Fatalf("order %s with %d authorizations, %v; want %s with %d", o.Status, len(o.Authzs), o.Identifiers, tt.wantStatus, tt.wantAuthzs)
			}
			for _, az := range o.Authzs {
				if az.AccountID != acct.ID || len(az.Challenges) == 0 {
					t.Fatalf("authorization %+v", az)
				}
				reused := proved != nil && az.ID == proved.Authzs[0].ID
				if reused == tt.reuseOff && proved != nil {
					t.Fatalf("authorization reused %v with reuse off %v", reused, tt.reuseOff)
				}
			}
			got, err := e.a.Order(t.Context(), authority.CallerOf(acct), o.ID)
			if err != nil || got.Status != tt.wantStatus {
				t.Fatalf("stored order: %v, %v", got, err)
			}
			if _, err := e.a.Order(t.Context(), authority.CallerOf(e.account(t)), o.ID); !errors.Is(err, acme.ErrUnauthorized) {
				t.Fatalf("another account reads the order: %v", err)
			}
		})
	}
}

func TestFinalize(t *testing.T) {
	tests := []struct {
		name       string
		pending    bool // finalize before the authorizations are valid
		otherAcct  bool
		csr        func(t *testing.T) []byte
		signerDown bool
		want       *acme.Problem
		wantStatus acme.Status
		wantError  *acme.Problem // the order's error
	}{
		{"issued", false, false, nil, false, nil, acme.StatusValid, nil},
		{"not ready", true, false, nil, false, acme.ErrOrderNotReady, "", nil},
		{"another account's order", false, true, nil, false, acme.ErrUnauthorized, "", nil},
		{"CSR for other names", false, false, func(t *testing.T) []byte { return csrFor(t, "a.example", "other.example") }, false, acme.ErrBadCSR, "", nil},
		{"CSR unparseable", false, false, func(*testing.T) []byte { return []byte("not a CSR") }, false, acme.ErrBadCSR, "", nil},
		{"signer down", false, false, nil, true, nil, acme.StatusInvalid, acme.ErrServerInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			acct := e.account(t)
			var o *authority.Order
			if tt.pending {
				o = e.order(t, acct, "a.example", "b.example")
			} else {
				o = e.validOrder(t, acct, "a.example", "b.example")
			}
			csr := csrFor(t, "a.example", "b.example")
			if tt.csr != nil {
				csr = tt.csr(t)
			}
			by := acct
			if tt.otherAcct {
				by = e.account(t)
			}
			e.sig.setFail(tt.signerDown)
			got, err := e.a.Finalize(t.Context(), authority.CallerOf(by), o.ID, csr)
			wantProblem(t, "Finalize", err, tt.want)
			if err != nil {
				if e.sig.signedCount() != 0 {
					t.Fatal("a refused finalize signed a certificate")
				}
				return
			}
			if got.Status == acme.StatusProcessing {
				got = e.waitOrder(t, acct, o.ID)
			}
			if got.Status != tt.wantStatus || !errors.Is(got.Error, tt.wantError) && (got.Error != nil || tt.wantError != nil) {
				t.Fatalf("order %s, error %v; want %s, %v", got.Status, got.Error, tt.wantStatus, tt.wantError)
			}
			if tt.wantStatus != acme.StatusValid {
				return
			}
			cert, err := e.a.Certificate(t.Context(), authority.CallerOf(acct), got.CertSerial)
			if err != nil {
				t.Fatal(err)
			}
			leaf := leafOf(t, cert.ChainPEM)
			if len(leaf.DNSNames) != 2 || e.sig.signedCount() != 1 {
				t.Fatalf("certificate for %v, %d signed", leaf.DNSNames, e.sig.signedCount())
			}
			if n := len(e.logs.events(t, "certificate.issue")); n != 1 {
				t.Fatalf("%d certificate.issue audit events", n)
			}
			// A second finalize issues nothing more.
			if _, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csr); !errors.Is(err, acme.ErrOrderNotReady) {
				t.Fatalf("second Finalize: %v, want orderNotReady", err)
			}
		})
	}
}

func leafOf(t *testing.T, chain []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(chain)
	if block == nil {
		t.Fatalf("no PEM in %q", chain)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// issued is a certificate issued to acct for names, with its key.
func (e *env) issued(t *testing.T, acct *acme.Account, names ...string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	o := e.validOrder(t, acct, names...)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csr)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusValid {
		got = e.waitOrder(t, acct, o.ID)
	}
	cert, err := e.a.Certificate(t.Context(), authority.CallerOf(acct), got.CertSerial)
	if err != nil {
		t.Fatal(err)
	}
	return leafOf(t, cert.ChainPEM).Raw, key
}

func caRequest(key *ecdsa.PrivateKey) ca.Request {
	now := time.Now()
	return ca.Request{PublicKey: key.Public(), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(time.Hour)}
}

// mustSign has signer issue a certificate for key's public half.
func mustSign(t *testing.T, s *fakeSigner, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	issued, err := s.Sign(t.Context(), caRequest(key))
	if err != nil {
		t.Fatal(err)
	}
	return issued.ChainPEM
}

func TestChangeKey(t *testing.T) {
	tests := []struct {
		name string
		// old and new key given the account's key and another account's
		keys func(cur, other, fresh *jose.JSONWebKey) (oldKey, newKey *jose.JSONWebKey)
		want *acme.Problem
		// wantInUse: refused because another account holds the new key
		wantInUse bool
	}{
		{"to a new key", func(cur, _, fresh *jose.JSONWebKey) (*jose.JSONWebKey, *jose.JSONWebKey) { return cur, fresh }, nil, false},
		{"to the current key", func(cur, _, _ *jose.JSONWebKey) (*jose.JSONWebKey, *jose.JSONWebKey) { return cur, cur }, acme.ErrMalformed, false},
		{"oldKey not the current key", func(_, _, fresh *jose.JSONWebKey) (*jose.JSONWebKey, *jose.JSONWebKey) { return fresh, fresh }, acme.ErrMalformed, false},
		{"to another account's key", func(cur, other, _ *jose.JSONWebKey) (*jose.JSONWebKey, *jose.JSONWebKey) { return cur, other }, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			cur, other, fresh := newKey(t), newKey(t), newKey(t)
			acct, _, err := e.a.NewAccount(t.Context(), cur, authority.NewAccountRequest{})
			if err != nil {
				t.Fatal(err)
			}
			holder, _, err := e.a.NewAccount(t.Context(), other, authority.NewAccountRequest{})
			if err != nil {
				t.Fatal(err)
			}
			oldKey, newK := tt.keys(cur, other, fresh)
			_, err = e.a.ChangeKey(t.Context(), acct, oldKey, newK)
			var inUse *authority.KeyInUseError
			switch {
			case tt.wantInUse:
				if !errors.As(err, &inUse) || inUse.AccountID != holder.ID {
					t.Fatalf("ChangeKey: %v, want the key in use by %s", err, holder.ID)
				}
			default:
				wantProblem(t, "ChangeKey", err, tt.want)
			}
			if tt.name == "to the current key" && !strings.Contains(err.Error(), "new key is the account's current key") {
				t.Fatalf("ChangeKey to the current key: %v, want a detail saying so", err)
			}
			wantKey := newK
			if err != nil {
				wantKey = cur
			}
			if got, err := e.a.AccountByKey(t.Context(), wantKey); err != nil || got.ID != acct.ID {
				t.Fatalf("account of the key it should have: %v, %v", got, err)
			}
			if err == nil {
				if _, err := e.a.AccountByKey(t.Context(), cur); !errors.Is(err, acme.ErrAccountDoesNotExist) {
					t.Fatalf("the old key still finds an account: %v", err)
				}
			}
		})
	}
}

// A signer that is unavailable for now (an HSM session closed) fails the
// finalize with the store's "retry later" and leaves the order ready, not
// invalid; finalizing again issues.
func TestFinalizeSignerUnavailable(t *testing.T) {
	e := newEnv(t, nil)
	acct := e.account(t)
	o := e.validOrder(t, acct, "a.example")
	csr := csrFor(t, "a.example")
	e.sig.setUnavailable(1)
	if _, err := e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csr); !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, ca.ErrUnavailable) {
		t.Fatalf("Finalize with the signer unavailable: %v, want storage.ErrUnavailable wrapping ca.ErrUnavailable", err)
	}
	got, err := e.a.Order(t.Context(), authority.CallerOf(acct), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusReady || got.Error != nil {
		t.Fatalf("order after a transient signing failure: %s, %v; want ready", got.Status, got.Error)
	}
	got, err = e.a.Finalize(t.Context(), authority.CallerOf(acct), o.ID, csr)
	if err != nil {
		t.Fatalf("second Finalize: %v", err)
	}
	if got.Status == acme.StatusProcessing {
		got = e.waitOrder(t, acct, o.ID)
	}
	if got.Status != acme.StatusValid || e.sig.signedCount() != 1 {
		t.Fatalf("order %s after retry, %d signed; want valid, 1", got.Status, e.sig.signedCount())
	}
}
