package integration

import (
	"context"
	"encoding/base64"
	"errors"
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

type adminEABKey struct {
	KID          string   `json:"kid"`
	HMAC         string   `json:"hmac"`
	Name         string   `json:"name"`
	Allow        []string `json:"allow"`
	Prevalidated []string `json:"prevalidated"`
	Profiles     []string `json:"profiles"`
	MaxValidity  string   `json:"max_validity"`
	SPIFFEID     string   `json:"spiffe_id"`
	SingleUse    bool     `json:"single_use"`
	Revoked      bool     `json:"revoked"`
	Accounts     []string `json:"accounts"`
}

// TestAdminEAB drives `acmed admin eab …` against a real acmed with
// --eab required: create a key, register with it through
// golang.org/x/crypto/acme, order inside and outside its policy (a
// prevalidated name needs no challenge), revoke it, and see the account
// stopped; bad requests fail in one line.
func TestAdminEAB(t *testing.T) {
	tokenFile := writeToken(t, 0o600)
	s := startAcmed(t, t.TempDir(), "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile, "--eab", "required")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var k adminEABKey
	adminJSON(t, s, tokenFile, &k, "eab", "create", "--name", "payments", "--allow", "*.pay.internal",
		"--prevalidated", "ci.pay.internal", "--profile", "server", "--max-validity", "72h",
		"--spiffe-id", "spiffe://example.org/payments", "--expires", "720h")
	secret, err := base64.RawURLEncoding.DecodeString(k.HMAC)
	if err != nil || len(secret) < 32 || strings.ContainsAny(k.HMAC, "=+/") {
		t.Fatalf("eab create: hmac %q is not base64url without padding of 32+ bytes (%v)", k.HMAC, err)
	}
	if k.KID == "" || k.Name != "payments" || len(k.Allow) != 1 || k.MaxValidity != "72h0m0s" || k.SPIFFEID == "" {
		t.Fatalf("eab create: %+v", k)
	}

	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err == nil {
		t.Fatal("registration without a binding succeeded under --eab required")
	}
	a, err := c.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{KID: k.KID, Key: secret}}, acme.AcceptTOS)
	if err != nil {
		t.Fatalf("register with the key: %v", err)
	}
	if _, err := c.AuthorizeOrder(ctx, acme.DomainIDs("db.other.internal")); !isProblem(err, "rejectedIdentifier") {
		t.Fatalf("order outside the key's policy: %v, want rejectedIdentifier", err)
	}
	o, err := c.AuthorizeOrder(ctx, acme.DomainIDs("ci.pay.internal"))
	if err != nil || o.Status != acme.StatusReady {
		t.Fatalf("prevalidated order: %+v, %v; want ready", o, err)
	}

	var list struct {
		Keys []adminEABKey `json:"keys"`
	}
	adminJSON(t, s, tokenFile, &list, "eab", "list")
	if len(list.Keys) != 1 || list.Keys[0].HMAC != "" || len(list.Keys[0].Accounts) != 1 || list.Keys[0].Accounts[0] != path.Base(a.URI) {
		t.Fatalf("eab list: %+v; want the key, its account, and no hmac", list)
	}
	var bound struct {
		EABKID string `json:"eab_kid"`
	}
	adminJSON(t, s, tokenFile, &bound, "accounts", "show", path.Base(a.URI))
	if bound.EABKID != k.KID {
		t.Fatalf("accounts show: eab_kid %q, want %q", bound.EABKID, k.KID)
	}
	var shown adminEABKey
	adminJSON(t, s, tokenFile, &shown, "eab", "show", k.KID)
	if shown.KID != k.KID || shown.HMAC != "" {
		t.Fatalf("eab show: %+v", shown)
	}
	adminJSON(t, s, tokenFile, &shown, "eab", "revoke", k.KID)
	if !shown.Revoked {
		t.Fatalf("eab revoke: %+v", shown)
	}
	if _, err := c.AuthorizeOrder(ctx, acme.DomainIDs("ci.pay.internal")); !isProblem(err, "unauthorized") {
		t.Fatalf("order by an account of a revoked key: %v, want unauthorized", err)
	}

	log := s.ReadLog()
	for _, want := range []string{
		"event=admin.eab.create caller=token eab_kid=" + k.KID,
		"event=account.create",
		"event=authorization.prevalidate",
		"event=admin.eab.list caller=token",
		"event=admin.eab.show caller=token eab_kid=" + k.KID,
		"event=admin.eab.revoke caller=token eab_kid=" + k.KID,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no audit line %q in acmed's log", want)
		}
	}
	if strings.Contains(log, k.HMAC) {
		t.Error("acmed's log holds the key's hmac")
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad pattern", []string{"eab", "create", "--name", "x", "--allow", "bad_name.example"}, "--allow"},
		{"bad duration", []string{"eab", "create", "--name", "x", "--max-validity", "soon"}, "max-validity"},
		{"no name", []string{"eab", "create"}, "--name"},
		{"bad spiffe id", []string{"eab", "create", "--name", "x", "--spiffe-id", "spiffe://example.org/a/../b"}, "--spiffe-id \"spiffe://example.org/a/../b\": path cannot contain dot segments"},
		{"unknown kid", []string{"eab", "show", "nope"}, "404"},
		{"missing kid", []string{"eab", "revoke"}, "want 1 argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := adminCLI(t, s, tokenFile, append(tc.args, "--json")...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v; want 1 (stdout %q)", err, stdout)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q: want one line with %q", stderr, tc.want)
			}
		})
	}
}

func isProblem(err error, typ string) bool {
	var ae *acme.Error
	return errors.As(err, &ae) && ae.ProblemType == "urn:ietf:params:acme:error:"+typ
}
