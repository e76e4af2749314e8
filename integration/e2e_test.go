package integration

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	return newKeyNoT()
}

// newKeyNoT is newKey for goroutines that have no *testing.T to fail.
func newKeyNoT() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func problemType(err error) string {
	var e *acme.Error
	if errors.As(err, &e) {
		return e.ProblemType
	}
	return ""
}

// issue runs order → http-01 → finalize → download for names and returns
// the chain and the certificate's key.
func issue(t *testing.T, ctx context.Context, c *acme.Client, h *challengetest.HTTP01, names ...string) ([][]byte, crypto.Signer) {
	t.Helper()
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(names...))
	if err != nil {
		t.Fatalf("new order: %v", err)
	}
	authorize(t, ctx, c, o, "http-01", func(_ *acme.Authorization, chal *acme.Challenge) {
		resp, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(chal.Token, resp)
	})
	if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != acme.StatusReady {
		t.Fatalf("order not ready: %v %+v", err, o)
	}
	key := newKey(t)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	der, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	fetched, err := c.FetchCert(ctx, certURL, true)
	if err != nil || len(fetched) != len(der) || !bytes.Equal(fetched[0], der[0]) {
		t.Fatalf("download %s: %v", certURL, err)
	}
	return der, key
}

// authorize answers the challenge of type typ of every authorization of o,
// through answer, and waits for each to be valid.
func authorize(t *testing.T, ctx context.Context, c *acme.Client, o *acme.Order, typ string, answer func(*acme.Authorization, *acme.Challenge)) {
	t.Helper()
	for _, u := range o.AuthzURLs {
		z, chal := challengeOf(t, ctx, c, u, typ)
		answer(z, chal)
		if _, err := c.Accept(ctx, chal); err != nil {
			t.Fatalf("accept: %v", err)
		}
		if _, err := c.WaitAuthorization(ctx, u); err != nil {
			t.Fatalf("authorization %s via %s: %v", z.Identifier.Value, typ, err)
		}
	}
}

// verifyChain checks the chain against root.pem alone and the names.
func verifyChain(t *testing.T, s *server, der [][]byte, names ...string) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		t.Fatal(err)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			t.Fatal(err)
		}
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: s.root, Intermediates: inter}); err != nil {
			t.Fatalf("chain does not verify for %s against root.pem: %v", n, err)
		}
	}
	got := slices.Clone(leaf.DNSNames)
	slices.Sort(got)
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("certificate names %v, want %v", got, want)
	}
	return leaf
}

// TestEndToEnd drives a real acmed process with golang.org/x/crypto/acme
// through the whole of RFC 8555: accounts, orders, http-01 on a real
// responder, finalize, download, revocation both ways, key rollover,
// deactivation, and a restart that keeps the CA and the accounts.
func TestEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dns := challengetest.StartDNS(t)
	h := challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "data")
	s := startAcmed(t, data, "--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port))

	// /roots.pem serves the same root clients were told to trust.
	resp, err := s.httpClient().Get(s.dir[:len(s.dir)-len("/directory")] + "/roots.pem")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if file, _ := os.ReadFile(filepath.Join(data, "root.pem")); !bytes.Equal(served, file) {
		t.Fatal("/roots.pem differs from root.pem")
	}

	accountKey := newKey(t)
	c := &acme.Client{Key: accountKey, DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	acct, err := c.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@example.com"}}, acme.AcceptTOS)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); !errors.Is(err, acme.ErrAccountAlreadyExists) {
		t.Fatalf("second register = %v, want ErrAccountAlreadyExists", err)
	}
	found, err := c.GetReg(ctx, "")
	if err != nil || found.URI != acct.URI {
		t.Fatalf("find account: %v %+v", err, found)
	}
	updated, err := c.UpdateReg(ctx, &acme.Account{Contact: []string{"mailto:pki@example.com"}})
	if err != nil || !slices.Equal(updated.Contact, []string{"mailto:pki@example.com"}) {
		t.Fatalf("update account: %v %+v", err, updated)
	}

	// Issue, then revoke with the account key.
	names := []string{"e2e.example", "www.e2e.example"}
	der, _ := issue(t, ctx, c, h, names...)
	verifyChain(t, s, der, names...)
	if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("revoke by account: %v", err)
	}
	// x/crypto/acme reports alreadyRevoked as success; the API tests assert
	// the problem itself.
	if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonUnspecified); err != nil {
		t.Fatalf("second revocation: %v", err)
	}

	// Issue again, then revoke with the certificate's own key.
	der, certKey := issue(t, ctx, c, h, "key.e2e.example")
	verifyChain(t, s, der, "key.e2e.example")
	if err := c.RevokeCert(ctx, certKey, der[0], acme.CRLReasonSuperseded); err != nil {
		t.Fatalf("revoke by certificate key: %v", err)
	}

	// Key rollover: the new key finds the account, the old one does not.
	newAccountKey := newKey(t)
	if err := c.AccountKeyRollover(ctx, newAccountKey); err != nil {
		t.Fatalf("key rollover: %v", err)
	}
	old := &acme.Client{Key: accountKey, DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := old.GetReg(ctx, ""); !errors.Is(err, acme.ErrNoAccount) {
		t.Fatalf("old key after rollover = %v, want ErrNoAccount", err)
	}
	rolled := &acme.Client{Key: newAccountKey, DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if a, err := rolled.GetReg(ctx, ""); err != nil || a.URI != acct.URI {
		t.Fatalf("new key after rollover: %v", err)
	}

	// A restart keeps the CA and the accounts.
	rootBefore, _ := os.ReadFile(filepath.Join(data, "root.pem"))
	s.Stop()
	s2 := startAcmed(t, data, "--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port))
	if rootAfter, _ := os.ReadFile(filepath.Join(data, "root.pem")); !bytes.Equal(rootBefore, rootAfter) {
		t.Fatal("restart replaced the CA")
	}
	c2 := &acme.Client{Key: newAccountKey, DirectoryURL: s2.dir, HTTPClient: s2.httpClient()}
	if a, err := c2.GetReg(ctx, ""); err != nil || a.URI == "" {
		t.Fatalf("account after restart: %v", err)
	}
	der, _ = issue(t, ctx, c2, h, "after.restart.example")
	verifyChain(t, s2, der, "after.restart.example")

	// Deactivation ends the account.
	if err := c2.DeactivateReg(ctx); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	if _, err := c2.AuthorizeOrder(ctx, acme.DomainIDs("late.example")); problemType(err) != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("order after deactivation = %v, want unauthorized", err)
	}
}
