package certmanager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/acme/accounts"
	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"
)

const email = "ops@example.com"

// TestCertManagerClientAccountResync is the Issuer controller's account
// handling against acmed: the first setup registers (201), every resync
// registers again with the same key and must get the existing account back
// (200, same URL, contact echoed so that no update is sent), then looks it
// up with onlyReturnExisting; an email change is an account update.
func TestCertManagerClientAccountResync(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e := newEnv(t)
	key := newAccountKey(t)

	cl, rec := newClient(t, e.acmed, key)
	acct, created, updated, err := setupIssuer(ctx, cl, email)
	if err != nil {
		t.Fatalf("first setup: %v\n%s", err, dump(rec.exchanges()))
	}
	if !created || updated {
		t.Fatalf("first setup: created=%v updated=%v, want a new account with the contact as sent", created, updated)
	}
	if acct.URI == "" || acct.Status != acmeapi.StatusValid || !slices.Equal(acct.Contact, []string{"mailto:" + email}) {
		t.Fatalf("new account: %+v", acct)
	}
	// setup.go registers again whenever the account URL's host differs
	// from the server URL's.
	if !sameHost(t, acct.URI, e.acmed.dir) {
		t.Fatalf("account URL %s is not on the directory's host %s", acct.URI, e.acmed.dir)
	}

	// A resync with the same client (cached nonces and KID) ...
	mark := rec.mark()
	again, created, updated, err := setupIssuer(ctx, cl, email)
	if err != nil {
		t.Fatalf("resync: %v\n%s", err, dump(rec.since(mark)))
	}
	if created || updated || again.URI != acct.URI || !slices.Equal(again.Contact, acct.Contact) {
		t.Fatalf("resync: created=%v updated=%v account %+v, want the existing %+v untouched", created, updated, again, acct)
	}
	// ... sends newAccount (answered 200: the client turns that into
	// ErrAccountAlreadyExists) then newAccount with onlyReturnExisting.
	var newAccount []int
	for _, x := range rec.since(mark) {
		if x.Method == http.MethodPost && strings.HasSuffix(x.URL, "/acme/new-account") {
			newAccount = append(newAccount, x.Status)
		}
	}
	if !slices.Equal(newAccount, []int{http.StatusOK, http.StatusOK}) {
		t.Errorf("resync newAccount statuses %v, want [200 200] (register, then onlyReturnExisting)\n%s", newAccount, dump(rec.since(mark)))
	}

	// Every resync builds a new client (clientBuilder in setup.go); here
	// with pkg/acme/accounts.NewClient itself, as the controller does,
	// trusting acmed through the Issuer's caBundle.
	viaAccounts := accounts.NewClient(newMetrics(), userAgent)(accounts.NewClientOptions{
		CABundle: e.acmed.rootPEM, Server: e.acmed.dir, PrivateKey: key,
	})
	again, created, updated, err = setupIssuer(ctx, viaAccounts, email)
	if err != nil || created || updated || again.URI != acct.URI {
		t.Fatalf("resync with accounts.NewClient: err=%v created=%v updated=%v account %+v", err, created, updated, again)
	}

	// The onlyReturnExisting lookup on its own (the client's accountKID
	// does it whenever it has no KID).
	fresh, freshRec := newClient(t, e.acmed, key)
	found, err := fresh.GetReg(ctx, "")
	if err != nil || found.URI != acct.URI || !slices.Equal(found.Contact, acct.Contact) {
		t.Fatalf("GetReg: %v %+v", err, found)
	}

	// A changed email on the Issuer: register returns the old contact, the
	// controller sends an update and expects the new contact echoed.
	const newEmail = "pki@example.com"
	changed, created, updated, err := setupIssuer(ctx, fresh, newEmail)
	if err != nil || created || !updated || changed.URI != acct.URI || !slices.Equal(changed.Contact, []string{"mailto:" + newEmail}) {
		t.Fatalf("email change: err=%v created=%v updated=%v account %+v", err, created, updated, changed)
	}
	again, created, updated, err = setupIssuer(ctx, fresh, newEmail)
	if err != nil || created || updated || again.URI != acct.URI {
		t.Fatalf("resync after email change: err=%v created=%v updated=%v account %+v", err, created, updated, again)
	}

	// A key acmed does not know: GetReg reports ErrNoAccount
	// (accountDoesNotExist), which is what accountKID relies on.
	stranger, strangerRec := newClient(t, e.acmed, newAccountKey(t))
	if _, err := stranger.GetReg(ctx, ""); !errors.Is(err, acmeapi.ErrNoAccount) {
		t.Fatalf("GetReg with an unknown key = %v, want ErrNoAccount\n%s", err, dump(strangerRec.exchanges()))
	}

	for _, r := range []*recorder{rec, freshRec, strangerRec} {
		checkWireRules(t, r)
	}
}

// TestCertManagerClientIssue is an Issuer's certificates through
// cert-manager's client: http-01 for two names with a common name,
// dns-01 for a wildcard and its base name, and an IP address over http-01,
// each as the order and challenge controllers drive it, plus the
// controller's recovery from a finalize it already did (403).
func TestCertManagerClientIssue(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	is := newIssuer(ctx, t)
	cl, rec := is.cl, is.rec

	t.Run("http-01", func(t *testing.T) {
		crt := certificate("cm.example", []string{"cm.example", "www.cm.example"}, nil)
		o := is.createOrder(ctx, t, crt)
		is.complete(ctx, t, o, crt, "http-01")

		// finalizeOrder's recovery path: when the controller failed to
		// record a finalize it made, it finalizes again, and on a 403
		// reads the order and, if valid, fetches the certificate. Any
		// other 4xx marks the Order failed.
		csr, _ := csrFor(t, crt)
		_, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		ae := acmeError(err)
		if ae == nil || ae.StatusCode != http.StatusForbidden {
			t.Fatalf("finalizing a valid order again = %v, want a 403 problem (cert-manager then fetches the issued certificate)", err)
		}
		got, err := cl.GetOrder(ctx, o.URI)
		if err != nil || got.Status != acmeapi.StatusValid || got.CertURL == "" {
			t.Fatalf("GetOrder after the 403: %v %+v", err, got)
		}
		if _, err := cl.FetchCert(ctx, got.CertURL, true); err != nil {
			t.Fatalf("FetchCert after the 403: %v", err)
		}
	})

	t.Run("dns-01 wildcard", func(t *testing.T) {
		crt := certificate("", []string{"*.wild.cm.example", "wild.cm.example"}, nil)
		is.issue(ctx, t, crt, "dns-01")
	})

	t.Run("ip http-01", func(t *testing.T) {
		crt := certificate("", nil, []string{"127.0.0.1"})
		is.issue(ctx, t, crt, "http-01")
	})

	checkWireRules(t, rec)
}

// TestCertManagerClientFailedChallenge: a challenge acmed cannot validate
// must come back from WaitAuthorization as an *acme.AuthorizationError, the
// challenge must carry an error (it becomes the Challenge's reason), and the
// order must be invalid when the order controller next reads it. The next
// Order for the same name (cert-manager creates a new one) must succeed.
func TestCertManagerClientFailedChallenge(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	is := newIssuer(ctx, t)
	cl, rec := is.cl, is.rec
	crt := certificate("", []string{"fail.cm.example"}, nil)

	o := is.createOrder(ctx, t, crt)
	z, err := cl.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	var chal *acmeapi.Challenge
	for _, c := range z.Challenges {
		if c.Type == "http-01" {
			chal = c
		}
	}
	if chal == nil {
		t.Fatal("no http-01 challenge")
	}
	// Present the wrong key authorization.
	is.e.http01.Set(chal.Token, chal.Token+".wrong")
	if _, err := cl.Accept(ctx, &acmeapi.Challenge{URI: chal.URI, Token: chal.Token}); err != nil {
		t.Fatalf("accept: %v", err)
	}
	_, err = cl.WaitAuthorization(ctx, o.AuthzURLs[0])
	var authErr *acmeapi.AuthorizationError
	if !errors.As(err, &authErr) {
		t.Fatalf("WaitAuthorization on a failing challenge = %v, want *acme.AuthorizationError", err)
	}
	t.Logf("AuthorizationError: %v", authErr)
	z, err = cl.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range z.Challenges {
		if c.URI == chal.URI {
			ae, ok := c.Error.(*acmeapi.Error)
			if c.Status != acmeapi.StatusInvalid || !ok || ae.Detail == "" {
				t.Errorf("failed challenge: status %q error %v, want invalid with a problem detail (cert-manager's Challenge reason)", c.Status, c.Error)
			}
		}
	}
	got, err := cl.GetOrder(ctx, o.URI)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acmeapi.StatusInvalid {
		t.Errorf("order after a failed authorization is %q, want invalid (the order controller reads it once on the Challenge failure)", got.Status)
	}

	// The retry: a new Order, with the right key authorization this time.
	is.issue(ctx, t, crt, "http-01")
	checkWireRules(t, rec)
}

// TestCertManagerClientBadNonceAfterRestart: acmed's embedded store keeps
// nonces in memory, so a restart makes the client's cached nonce unknown.
// cert-manager's client retries badNonce only when it comes with status 400
// (acmeutil.RetryBackoff); the retry must succeed transparently, with the
// account (and the orders) surviving the restart on disk.
func TestCertManagerClientBadNonceAfterRestart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := &env{}
	e.dns, e.http01 = startResponders(t)
	data := filepath.Join(t.TempDir(), "data")
	port := freePort(t)
	args := []string{
		"--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--external-url", "https://localhost:" + strconv.Itoa(port),
		"--resolver", e.dns.Addr,
		"--http01-port", strconv.Itoa(e.http01.Port),
	}
	e.acmed = startAcmed(t, data, args...)
	first := e.acmed

	cl, rec := newClient(t, first, newAccountKey(t))
	acct, _, _, err := setupIssuer(ctx, cl, email)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{e: e, cl: cl, rec: rec}
	before := certificate("", []string{"before.restart.cm.example"}, nil)
	oBefore := is.createOrder(ctx, t, before)
	is.complete(ctx, t, oBefore, before, "http-01")

	first.stop(t)
	second := restartAcmed(t, data, args)
	if second.dir != first.dir {
		t.Fatalf("directory URL changed across the restart: %s, then %s", first.dir, second.dir)
	}
	e.acmed = second

	// The next request (new order, KID form) goes out with the nonce the
	// client cached from the first process.
	mark := rec.mark()
	after := certificate("", []string{"after.restart.cm.example"}, nil)
	o := is.createOrder(ctx, t, after)
	xs := rec.since(mark)
	var statuses []string
	for _, x := range xs {
		if x.Method == http.MethodPost {
			statuses = append(statuses, fmt.Sprintf("%d %s", x.Status, x.Problem))
		}
	}
	want := []string{"400 urn:ietf:params:acme:error:badNonce", "201 "}
	if !slices.Equal(statuses, want) {
		t.Fatalf("new order after restart: POST answers %q, want %q (badNonce with 400, then the retry created)\n%s", statuses, want, dump(xs))
	}
	t.Logf("after the restart:\n%s", dump(xs))

	// The account survived: the order was made with its KID, the order from
	// before is still there, and the resync finds the same account.
	if got, err := cl.GetOrder(ctx, oBefore.URI); err != nil || got.Status != acmeapi.StatusValid {
		t.Fatalf("order from before the restart: %v %+v", err, got)
	}
	again, created, _, err := setupIssuer(ctx, cl, email)
	if err != nil || created || again.URI != acct.URI {
		t.Fatalf("resync after restart: err=%v created=%v account %+v, want %s", err, created, again, acct.URI)
	}
	is.complete(ctx, t, o, after, "http-01")
	checkWireRules(t, rec)
}
