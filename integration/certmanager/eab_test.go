package certmanager

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	acmecl "github.com/cert-manager/cert-manager/pkg/acme/client"
	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"
)

// setupIssuerEAB is setup.go's registerAccount with an Issuer's
// externalAccountBinding: the binding goes with every registration, the
// resyncs of an existing account included.
func setupIssuerEAB(ctx context.Context, cl acmecl.Interface, eab *acmeapi.ExternalAccountBinding) (*acmeapi.Account, bool, error) {
	acct, err := cl.Register(ctx, &acmeapi.Account{Contact: []string{"mailto:" + email}, ExternalAccountBinding: eab}, acmeapi.AcceptTOS)
	if err == acmeapi.ErrAccountAlreadyExists { //nolint:errorlint // exactly as setup.go compares it
		acct, err = cl.GetReg(ctx, "")
		return acct, false, err
	}
	return acct, err == nil, err
}

// TestCertManagerClientEAB: cert-manager's ACME client against acmed --eab
// required with a key made by `acmed admin eab create`: an Issuer without
// a binding is refused (externalAccountRequired), with one it registers;
// every resync re-sends the binding and gets the account back (200); its
// orders are held to the key's policy (refused outside it, a prevalidated
// name ready at once), and another Issuer's wrong MAC is refused.
func TestCertManagerClientEAB(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	token := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(token, []byte("certmanager-eab-token-0123456789ab"), 0o600); err != nil {
		t.Fatal(err)
	}
	adminAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freePort(t)))
	e := &env{}
	e.dns, e.http01 = startResponders(t)
	data := filepath.Join(t.TempDir(), "data")
	e.acmed = startAcmed(t, data, "--listen", "127.0.0.1:0", "--resolver", e.dns.Addr,
		"--http01-port", fmt.Sprint(e.http01.Port), "--eab", "required",
		"--admin-listen", adminAddr, "--admin-token-file", token)
	cmd := exec.CommandContext(ctx, acmedBinary, "admin", "eab", "create", "--json", "--data", data,
		"--name", "cert-manager", "--allow", "*.cm.example", "--prevalidated", "pre.cm.example")
	cmd.Env = append(os.Environ(), "ACMED_ADMIN_URL=https://"+adminAddr, "ACMED_ADMIN_TOKEN_FILE="+token)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("acmed admin eab create: %v: %s", err, out)
	}
	var k struct{ KID, HMAC string }
	if err := json.Unmarshal(out, &k); err != nil {
		t.Fatal(err)
	}
	// cert-manager decodes the Secret's key as base64url without padding.
	secret, err := base64.RawURLEncoding.DecodeString(k.HMAC)
	if err != nil {
		t.Fatal(err)
	}

	key := newAccountKey(t)
	cl, rec := newClient(t, e.acmed, key)
	if _, _, err := setupIssuerEAB(ctx, cl, nil); acmeError(err) == nil || !strings.HasSuffix(acmeError(err).ProblemType, ":externalAccountRequired") {
		t.Fatalf("setup without a binding: %v, want externalAccountRequired", err)
	}
	wrong, _ := newClient(t, e.acmed, newAccountKey(t))
	if _, _, err := setupIssuerEAB(ctx, wrong, &acmeapi.ExternalAccountBinding{KID: k.KID, Key: []byte(strings.Repeat("w", 64))}); acmeError(err) == nil || !strings.HasSuffix(acmeError(err).ProblemType, ":unauthorized") {
		t.Fatalf("setup with a wrong MAC: %v, want unauthorized", err)
	}
	eab := &acmeapi.ExternalAccountBinding{KID: k.KID, Key: secret}
	acct, created, err := setupIssuerEAB(ctx, cl, eab)
	if err != nil || !created {
		t.Fatalf("setup with the binding: created=%v %v", created, err)
	}
	mark := rec.mark()
	again, created, err := setupIssuerEAB(ctx, cl, eab)
	if err != nil || created || again.URI != acct.URI {
		t.Fatalf("resync re-sending the binding: created=%v %v %+v", created, err, again)
	}
	var statuses []int
	for _, x := range rec.since(mark) {
		if x.Method == http.MethodPost && strings.HasSuffix(x.URL, "/acme/new-account") {
			statuses = append(statuses, x.Status)
		}
	}
	if !slices.Equal(statuses, []int{http.StatusOK, http.StatusOK}) {
		t.Errorf("resync newAccount statuses %v, want [200 200]", statuses)
	}

	if _, err := cl.AuthorizeOrder(ctx, []acmeapi.AuthzID{{Type: "dns", Value: "x.other.example"}}); acmeError(err) == nil || !strings.HasSuffix(acmeError(err).ProblemType, ":rejectedIdentifier") {
		t.Fatalf("order outside the key's policy: %v, want rejectedIdentifier", err)
	}
	o, err := cl.AuthorizeOrder(ctx, []acmeapi.AuthzID{{Type: "dns", Value: "pre.cm.example"}})
	if err != nil || o.Status != acmeapi.StatusReady {
		t.Fatalf("prevalidated order: %v %+v, want ready", err, o)
	}
	checkWireRules(t, rec)
}
