package certmanager

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	acmecl "github.com/cert-manager/cert-manager/pkg/acme/client"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"
)

// This file is the controllers' use of the client, reduced to the calls
// and the decisions taken on their results. Function names point at the
// cert-manager v1.21.2 code they follow.

// setupIssuer is (*Acme).setup in pkg/issuer/acme/setup.go once it has a
// client: registerAccount, then ensureEmailUpToDate. It runs on every
// resync of an Issuer whose cached registration does not suffice, with the
// same key. created tells whether newAccount answered 201, updated whether
// an account update had to be sent because the contact was not echoed.
func setupIssuer(ctx context.Context, cl acmecl.Interface, email string) (acct *acmeapi.Account, created, updated bool, err error) {
	// registerAccount
	var emailurl []string
	if email != "" {
		emailurl = []string{"mailto:" + strings.ToLower(email)}
	}
	acct, err = cl.Register(ctx, &acmeapi.Account{Contact: emailurl}, acmeapi.AcceptTOS)
	if err == acmeapi.ErrAccountAlreadyExists { //nolint:errorlint // exactly as setup.go compares it
		acct, err = cl.GetReg(ctx, "")
	} else if err == nil {
		created = true
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("register: %w", err)
	}
	// ensureEmailUpToDate
	registered := ""
	if len(acct.Contact) > 0 {
		registered = strings.Replace(acct.Contact[0], "mailto:", "", 1)
	}
	if registered != email {
		acct.Contact = emailurl
		if acct, err = cl.UpdateReg(ctx, acct); err != nil {
			return nil, created, true, fmt.Errorf("update account: %w", err)
		}
		updated = true
	}
	return acct, created, updated, nil
}

// certificate is a cert-manager Certificate resource's spec as far as the
// ACME issuer uses it; PrivateKey nil means cert-manager's default, RSA-2048.
func certificate(commonName string, dnsNames, ips []string) *cmapi.Certificate {
	return &cmapi.Certificate{Spec: cmapi.CertificateSpec{
		CommonName: commonName, DNSNames: dnsNames, IPAddresses: ips, SecretName: "tls",
	}}
}

// csrFor makes the key and CSR as the requestmanager controller does:
// pki.GeneratePrivateKeyForCertificate, pki.GenerateCSR with the feature
// gates at their v1.21 defaults, pki.EncodeCSR.
func csrFor(t *testing.T, crt *cmapi.Certificate) ([]byte, crypto.Signer) {
	t.Helper()
	key, err := pki.GeneratePrivateKeyForCertificate(crt)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := pki.GenerateCSR(crt,
		pki.WithUseLiteralSubject(true),
		pki.WithEncodeBasicConstraintsInRequest(false),
		pki.WithNameConstraints(true),
		pki.WithOtherNames(true))
	if err != nil {
		t.Fatal(err)
	}
	der, err := pki.EncodeCSR(tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// identifiers is the identifier list createOrder in
// pkg/controller/acmeorders/sync.go sends: DNS names (plus the common name
// if it is a fully qualified domain name) then IP addresses (plus the
// common name if it is one), each set sorted.
func identifiers(crt *cmapi.Certificate) []acmeapi.AuthzID {
	dns := slices.Clone(crt.Spec.DNSNames)
	ips := slices.Clone(crt.Spec.IPAddresses)
	switch cn := crt.Spec.CommonName; {
	case cn == "":
	case net.ParseIP(cn) != nil:
		ips = append(ips, cn)
	case len(validation.IsFullyQualifiedDomainName(nil, cn)) == 0:
		dns = append(dns, cn)
	}
	slices.Sort(dns)
	slices.Sort(ips)
	return append(acmeapi.DomainIDs(slices.Compact(dns)...), acmeapi.IPIDs(slices.Compact(ips)...)...)
}

// issuer drives one account's orders.
type issuer struct {
	e   *env
	cl  acmecl.Interface
	rec *recorder
}

// newIssuer is an Issuer set up as the controller sets one up: a fresh
// environment, a new RSA-2048 account registered through setupIssuer.
func newIssuer(ctx context.Context, t *testing.T) *issuer {
	t.Helper()
	e := newEnv(t)
	cl, rec := newClient(t, e.acmed, newAccountKey(t))
	if _, _, _, err := setupIssuer(ctx, cl, email); err != nil {
		t.Fatal(err)
	}
	return &issuer{e: e, cl: cl, rec: rec}
}

// createOrder is createOrder in acmeorders/sync.go: AuthorizeOrder, which
// fails unless acmed answers exactly 201, and the order's URL taken from
// its Location header. opts are the options the controller builds from the
// Order's spec (WithOrderProfile from the Issuer's spec.acme.profile,
// WithOrderNotAfter from the Certificate's duration).
func (is *issuer) createOrder(ctx context.Context, t *testing.T, crt *cmapi.Certificate, opts ...acmeapi.OrderOption) *acmeapi.Order {
	t.Helper()
	ids := identifiers(crt)
	o, err := is.cl.AuthorizeOrder(ctx, ids, opts...)
	if err != nil {
		t.Fatalf("AuthorizeOrder(%v): %v\nexchanges:\n%s", ids, err, dump(is.rec.exchanges()))
	}
	if o.URI == "" || o.FinalizeURL == "" || len(o.AuthzURLs) == 0 {
		t.Fatalf("new order without Location, finalize or authorizations: %+v", o)
	}
	if !sameIdentifiers(o.Identifiers, ids) {
		t.Fatalf("order identifiers %v, asked for %v", o.Identifiers, ids)
	}
	if o.Status != acmeapi.StatusPending && o.Status != acmeapi.StatusReady {
		t.Fatalf("new order status %q", o.Status)
	}
	return o
}

func sameIdentifiers(a, b []acmeapi.AuthzID) bool {
	key := func(ids []acmeapi.AuthzID) []string {
		var s []string
		for _, id := range ids {
			s = append(s, id.Type+":"+id.Value)
		}
		slices.Sort(s)
		return s
	}
	return slices.Equal(key(a), key(b))
}

// challenge is a cert-manager Challenge resource's spec.
type challenge struct {
	authzURL, url, token, typ, identifier, key string
	wildcard                                   bool
}

// authorize takes an order from created to all challenges final, as
// fetchMetadataForAuthorizations, buildPartialRequiredChallenges and
// ensureKeysForChallenges (acmeorders) and then Sync/acceptChallenge
// (acmechallenges) do. Each challenge is worked on concurrently with the
// same client, as the challenge controller's workers do. It returns the
// error WaitAuthorization returned for each challenge, nil for valid.
func (is *issuer) authorize(ctx context.Context, t *testing.T, o *acmeapi.Order, typ string) []error {
	t.Helper()
	var chs []challenge
	for _, u := range o.AuthzURLs {
		z, err := is.cl.GetAuthorization(ctx, u)
		if err != nil {
			t.Fatalf("GetAuthorization %s: %v", u, err)
		}
		// cert-manager creates no Challenge for an authorization that is
		// already valid (acmed reuses the account's valid authorizations).
		if z.Status == acmeapi.StatusValid {
			continue
		}
		if z.Status != acmeapi.StatusPending {
			t.Fatalf("authorization %s for %v has status %q", u, z.Identifier, z.Status)
		}
		var found *acmeapi.Challenge
		for _, c := range z.Challenges {
			if c.Type == typ {
				found = c
			}
		}
		if found == nil {
			t.Fatalf("authorization %s for %v offers no %s challenge", u, z.Identifier, typ)
		}
		ch := challenge{authzURL: u, url: found.URI, token: found.Token, typ: typ, identifier: z.Identifier.Value, wildcard: z.Wildcard}
		switch typ {
		case "http-01":
			ch.key, err = is.cl.HTTP01ChallengeResponse(ch.token)
		case "dns-01":
			ch.key, err = is.cl.DNS01ChallengeRecord(ch.token)
		}
		if err != nil {
			t.Fatal(err)
		}
		chs = append(chs, ch)
	}

	errs := make([]error, len(chs))
	var wg sync.WaitGroup
	for i, ch := range chs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = is.solve(ctx, ch)
		}()
	}
	wg.Wait()
	return errs
}

// solve is one Challenge through the challenge controller's Sync.
func (is *issuer) solve(ctx context.Context, ch challenge) error {
	// syncChallengeStatus: the status is read from the authorization (a
	// POST-as-GET to the challenge URL is avoided on purpose).
	z, err := is.cl.GetAuthorization(ctx, ch.authzURL)
	if err != nil {
		return fmt.Errorf("syncChallengeStatus: %w", err)
	}
	var state string
	for _, c := range z.Challenges {
		if c.URI == ch.url {
			state = c.Status
		}
	}
	if state == "" {
		return fmt.Errorf("syncChallengeStatus: challenge %s not in authorization %s", ch.url, ch.authzURL)
	}
	if state != acmeapi.StatusPending {
		return fmt.Errorf("syncChallengeStatus: challenge %s is %q before it was presented", ch.url, state)
	}

	// Present, then (after cert-manager's self-check, not done here) accept.
	switch ch.typ {
	case "http-01":
		is.e.http01.Set(ch.token, ch.key)
		defer is.e.http01.Delete(ch.token) // CleanUp once final
	case "dns-01":
		fqdn := "_acme-challenge." + ch.identifier
		is.e.dns.AddTXT(fqdn, ch.key)
		defer is.e.dns.RemoveTXT(fqdn, ch.key)
	}

	// acceptChallenge: Accept with only URL and token, then
	// WaitAuthorization bounded by authorizationTimeout (2 min).
	if _, err := is.cl.Accept(ctx, &acmeapi.Challenge{URI: ch.url, Token: ch.token}); err != nil {
		return fmt.Errorf("accept %s: %w", ch.url, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	z, err = is.cl.WaitAuthorization(wctx, ch.authzURL)
	if err != nil {
		return err
	}
	if z.Status != acmeapi.StatusValid {
		return fmt.Errorf("WaitAuthorization returned status %q", z.Status)
	}
	if ch.typ == "http-01" && is.e.http01.Hits(ch.token) == 0 {
		return fmt.Errorf("authorization %s valid without acmed fetching the http-01 token", ch.authzURL)
	}
	return nil
}

// waitReady is the order controller once all challenges are final: it
// reads the order with GetOrder and, while acmed still says pending,
// requeues (every 5 s in cert-manager, faster here).
func (is *issuer) waitReady(ctx context.Context, t *testing.T, o *acmeapi.Order) *acmeapi.Order {
	t.Helper()
	for polls := 1; ; polls++ {
		got, err := is.cl.GetOrder(ctx, o.URI)
		if err != nil {
			t.Fatalf("GetOrder %s: %v", o.URI, err)
		}
		switch got.Status {
		case acmeapi.StatusReady:
			if polls > 1 {
				t.Logf("order %s was still pending %d time(s) after its authorizations were valid (cert-manager requeues every 5s)", o.URI, polls-1)
			}
			return got
		case acmeapi.StatusPending:
		default:
			t.Fatalf("order %s is %q after all its authorizations were valid: %v", o.URI, got.Status, got.Error)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("order %s never became ready: %v", o.URI, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// finalize is finalizeOrder in acmeorders/sync.go: CreateOrderCert with the
// DER CSR and bundle=true (which POSTs the CSR and then polls the URL in the
// finalize response's Location header until the order is valid), then the
// status refresh with GetOrder. It returns the chain and certificate URL.
func (is *issuer) finalize(ctx context.Context, t *testing.T, o *acmeapi.Order, csr []byte) ([][]byte, string) {
	t.Helper()
	mark := is.rec.mark()
	chain, certURL, err := is.cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
	if err != nil {
		t.Fatalf("CreateOrderCert %s: %v\nexchanges:\n%s", o.FinalizeURL, err, dump(is.rec.since(mark)))
	}
	// The finalize answer must name the order in Location: the client
	// polls that URL (an empty one fails the attempt).
	for _, x := range is.rec.since(mark) {
		if x.Method == http.MethodPost && x.URL == o.FinalizeURL && x.Status == http.StatusOK && x.Location != o.URI {
			t.Errorf("finalize answered Location %q, want the order URL %q", x.Location, o.URI)
		}
	}
	got, err := is.cl.GetOrder(ctx, o.URI)
	if err != nil {
		t.Fatalf("GetOrder after finalize: %v", err)
	}
	if got.Status != acmeapi.StatusValid || got.CertURL != certURL {
		t.Fatalf("order after finalize: status %q certificate %q, want valid %q", got.Status, got.CertURL, certURL)
	}
	return chain, certURL
}

// fetch is syncCertificateDataWithOrder plus getPreferredCertChain: the
// certificate again with FetchCert, and the alternates a preferredChain
// would be looked for in.
func (is *issuer) fetch(ctx context.Context, t *testing.T, certURL string, want [][]byte) {
	t.Helper()
	again, err := is.cl.FetchCert(ctx, certURL, true)
	if err != nil {
		t.Fatalf("FetchCert %s: %v", certURL, err)
	}
	if !slices.EqualFunc(again, want, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Errorf("FetchCert returned a different chain than CreateOrderCert")
	}
	alts, err := is.cl.ListCertAlternates(ctx, certURL)
	if err != nil {
		t.Fatalf("ListCertAlternates %s: %v", certURL, err)
	}
	for _, u := range alts {
		if _, err := is.cl.FetchCert(ctx, u, true); err != nil {
			t.Errorf("FetchCert alternate %s: %v", u, err)
		}
	}
}

// issue is one certificate from Certificate spec to chain, with typ the
// solver's challenge type.
func (is *issuer) issue(ctx context.Context, t *testing.T, crt *cmapi.Certificate, typ string) ([][]byte, crypto.Signer) {
	t.Helper()
	o := is.createOrder(ctx, t, crt)
	return is.complete(ctx, t, o, crt, typ)
}

func (is *issuer) complete(ctx context.Context, t *testing.T, o *acmeapi.Order, crt *cmapi.Certificate, typ string) ([][]byte, crypto.Signer) {
	t.Helper()
	errs := is.authorize(ctx, t, o, typ)
	if len(errs) == 0 {
		// Every test order is for names the account has not validated.
		t.Fatalf("order %s needed no challenge", o.URI)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("challenge %d of order %s: %v\nexchanges:\n%s", i, o.URI, err, dump(is.rec.exchanges()))
		}
	}
	o = is.waitReady(ctx, t, o)
	csr, key := csrFor(t, crt)
	chain, certURL := is.finalize(ctx, t, o, csr)
	is.fetch(ctx, t, certURL, chain)
	verifyCert(t, is.e.acmed, chain, crt, key)
	return chain, key
}

// verifyCert checks that chain verifies up to acmed's root.pem for server
// auth and that the leaf holds key and exactly the Certificate's names.
func verifyCert(t *testing.T, a *acmed, chain [][]byte, crt *cmapi.Certificate, key crypto.Signer) {
	t.Helper()
	if len(chain) == 0 {
		t.Fatal("empty chain")
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatalf("certificate %d of the chain: %v", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.rootPool(t), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("chain does not verify to root.pem: %v", err)
	}
	var wantDNS, wantIP []string
	for _, id := range identifiers(crt) {
		if id.Type == "ip" {
			wantIP = append(wantIP, net.ParseIP(id.Value).String())
		} else {
			wantDNS = append(wantDNS, id.Value)
		}
	}
	gotDNS := slices.Sorted(slices.Values(leaf.DNSNames))
	var gotIP []string
	for _, ip := range leaf.IPAddresses {
		gotIP = append(gotIP, ip.String())
	}
	slices.Sort(gotIP)
	slices.Sort(wantDNS)
	slices.Sort(wantIP)
	if !slices.Equal(gotDNS, wantDNS) || !slices.Equal(gotIP, wantIP) {
		t.Errorf("certificate names DNS %v IP %v, want DNS %v IP %v", gotDNS, gotIP, wantDNS, wantIP)
	}
	if len(leaf.EmailAddresses)+len(leaf.URIs) > 0 {
		t.Errorf("certificate has SANs nobody asked for: %v %v", leaf.EmailAddresses, leaf.URIs)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		t.Error("certificate is not for the CSR's key")
	}
}

// acmeError unwraps the client's *acme.Error.
func acmeError(err error) *acmeapi.Error {
	var ae *acmeapi.Error
	if errors.As(err, &ae) {
		return ae
	}
	return nil
}
