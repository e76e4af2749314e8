package redis_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// maxIssuanceBytes bounds what one issuance may leave in Redis, so a
// change that bloats the records shows up. The measured figure is in the
// package documentation; this leaves room for allocator noise.
const maxIssuanceBytes = 4 << 10

// TestMemoryPerIssuance runs issuances the way the authority does (new
// account, nonces, an order for one name, its validation and finalization
// jobs, a certificate) and measures what stays behind: MEMORY USAGE of
// each key one issuance leaves, and, on a server of the test's own, the
// growth of used_memory over many issuances. Run with -v to see the
// figures.
func TestMemoryPerIssuance(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	flush(t, c)
	s := open(t, srv.URL, redis.Config{})
	chain := testChain(t)
	ctx := t.Context()

	issue(t, s, 0, chain) // creates the job stream and its group
	const n = 500
	before := redistest.UsedMemory(t, c)
	for i := 1; i <= n; i++ {
		issue(t, s, i, chain)
	}
	eventually(t, "jobs handled", func() bool { return jobsLeft(t, c) == 0 })

	acct := accountID(1)
	keys := []string{
		"acmed:{a:" + acct + "}:account",
		"acmed:acctkey:" + thumbprint(1),
		"acmed:{a:" + acct + "}:order:" + storage.ScopedID(acct, "order000000000001"),
		"acmed:{a:" + acct + "}:authz:" + storage.ScopedID(acct, "authz000000000001"),
		"acmed:{a:" + acct + "}:validauthz:dns:host1.example.com:0",
		"acmed:{a:" + acct + "}:orders",
		"acmed:cert:" + serial(1),
	}
	total := int64(0)
	for _, k := range keys {
		b, err := c.MemoryUsage(ctx, k).Result()
		if err != nil {
			t.Fatalf("MEMORY USAGE %s: %v", k, err)
		}
		t.Logf("%6d bytes  %s", b, k)
		total += b
	}
	t.Logf("%6d bytes  MEMORY USAGE, all keys of one issuance", total)
	if srv.Dir != "" { // not a shared REDIS_URL server, which others may be filling
		t.Logf("%6d bytes  used_memory growth per issuance, over %d", (redistest.UsedMemory(t, c)-before)/n, n)
	}
	if total > maxIssuanceBytes {
		t.Errorf("one issuance leaves %d bytes, want at most %d", total, maxIssuanceBytes)
	}
}

// Identifiers as the authority makes them: 12 random bytes, base64url.
func accountID(i int) string  { return fmt.Sprintf("acct%012d", i) }
func thumbprint(i int) string { return fmt.Sprintf("%043d", i) }
func serial(i int) string     { return fmt.Sprintf("7f%036x", i) }

// issue stores what issuance number i leaves behind, through the same
// calls in the same order as the authority.
func issue(t *testing.T, s *redis.Store, i int, chain []byte) {
	t.Helper()
	ctx := t.Context()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for j := range 4 { // one nonce spent per request: new account, order, challenge, finalize
		_, err := s.ConsumeNonce(ctx, fmt.Sprintf("nonce%017d%d", i, j), now.Add(time.Hour))
		must(err)
	}
	acct := accountID(i)
	must(s.CreateAccount(ctx, &acme.Account{
		ID: acct, Status: acme.StatusValid, Contact: []string{"mailto:ops@example.com"},
		Key:           []byte(`{"crv":"P-256","kty":"EC","x":"` + strings.Repeat("x", 43) + `","y":"` + strings.Repeat("y", 43) + `"}`),
		KeyThumbprint: thumbprint(i), TermsAgreed: true, CreatedAt: now,
	}))
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: fmt.Sprintf("host%d.example.com", i)}
	authz := &acme.Authorization{
		ID: storage.ScopedID(acct, fmt.Sprintf("authz%012d", i)), AccountID: acct, Identifier: ident,
		Status: acme.StatusPending, Expires: now.Add(7 * day),
	}
	for _, typ := range acme.ChallengeTypes(ident, false) {
		authz.Challenges = append(authz.Challenges, acme.Challenge{
			ID: "chall" + string(typ)[:6], Type: typ, Token: strings.Repeat("t", 43), Status: acme.StatusPending,
		})
	}
	order := &acme.Order{
		ID: storage.ScopedID(acct, fmt.Sprintf("order%012d", i)), AccountID: acct, Status: acme.StatusPending,
		Identifiers: []acme.Identifier{ident}, AuthzIDs: []string{authz.ID}, Expires: now.Add(7 * day), CreatedAt: now,
	}
	must(s.CreateOrder(ctx, order, []*acme.Authorization{authz}))

	var claim storage.Claim
	_, err := s.UpdateAuthorization(ctx, authz.ID, func(a *acme.Authorization) error {
		a.Challenges[0].Status = acme.StatusProcessing
		return nil
	}, storage.Queue(storage.Job{AuthzID: authz.ID, ChallengeID: authz.Challenges[0].ID}, &claim))
	must(err)
	_, err = s.UpdateAuthorization(ctx, authz.ID, func(a *acme.Authorization) error {
		a.Status, a.Expires = acme.StatusValid, now.Add(30*day)
		a.Challenges[0].Status, a.Challenges[0].Validated = acme.StatusValid, now
		return nil
	}, storage.Finishing(claim))
	must(err)

	_, err = s.UpdateOrder(ctx, order.ID, func(o *acme.Order) error {
		o.Status, o.CSR = acme.StatusProcessing, make([]byte, 250)
		return nil
	}, storage.Queue(storage.Job{OrderID: order.ID}, &claim))
	must(err)
	_, err = s.UpdateOrder(ctx, order.ID, func(o *acme.Order) error {
		o.Status, o.CSR, o.CertSerial = acme.StatusValid, nil, serial(i)
		return nil
	}, storage.Finishing(claim), storage.WithCertificate(&acme.Certificate{
		Serial: serial(i), AccountID: acct, OrderID: order.ID, ChainPEM: chain,
		Identifiers: []acme.Identifier{ident}, NotAfter: now.Add(90 * day),
	}))
	must(err)
}

// testChain is a chain like the built-in CA's: a P-256 leaf for one name,
// then its P-256 intermediate, as PEM.
func testChain(t *testing.T) []byte {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	intKey, leafKey := key(), key()
	serialBytes := make([]byte, 16)
	if _, err := rand.Read(serialBytes); err != nil {
		t.Fatal(err)
	}
	intTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "acmed Intermediate CA", Organization: []string{"Example Org"}},
		NotBefore: now, NotAfter: now.Add(5 * 365 * day), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	intDER, err := x509.CreateCertificate(rand.Reader, intTmpl, intTmpl, &intKey.PublicKey, intKey)
	if err != nil {
		t.Fatal(err)
	}
	intCert, err := x509.ParseCertificate(intDER)
	if err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(serialBytes),
		NotBefore:    now, NotAfter: now.Add(90 * day), DNSNames: []string{"host1.example.com"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, intCert, &leafKey.PublicKey, intKey)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, der := range [][]byte{leafDER, intDER} {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return out
}
