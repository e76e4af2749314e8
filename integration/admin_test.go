package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// adminCLI runs `acmed admin ARGS` as a process against s's admin API with
// the token in tokenFile, and returns its stdout, stderr and exit error.
func adminCLI(t *testing.T, s *server, tokenFile string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, acmedBinary, append([]string{"admin"}, args...)...)
	cmd.Env = append(os.Environ(), "ACMED_ADMIN_URL="+s.AdminURL, "ACMED_ADMIN_TOKEN_FILE="+tokenFile, "ACMED_DATA="+s.data)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// adminJSON runs a subcommand with --json, which must succeed, and
// decodes what it printed.
func adminJSON(t *testing.T, s *server, tokenFile string, out any, args ...string) {
	t.Helper()
	stdout, stderr, err := adminCLI(t, s, tokenFile, append(args, "--json")...)
	if err != nil {
		t.Fatalf("acmed admin %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	if err := json.Unmarshal([]byte(stdout), out); err != nil {
		t.Fatalf("acmed admin %s --json printed %q: %v", strings.Join(args, " "), stdout, err)
	}
}

func writeToken(t *testing.T, mode os.FileMode) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(f, []byte("3f1c8e0f6b2a4d9e8c7b6a5f4e3d2c1b\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return f
}

type adminAccount struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	Contact       []string  `json:"contact"`
	KeyThumbprint string    `json:"key_thumbprint"`
	CreatedAt     time.Time `json:"created_at"`
}

// TestAdminAccounts drives `acmed admin accounts …` as an operator would,
// against a real acmed: list, show, deactivate, and the deactivated
// account's next ACME request refused.
func TestAdminAccounts(t *testing.T) {
	tokenFile := writeToken(t, 0o600)
	s := startAcmed(t, t.TempDir(), "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile)
	if s.AdminURL == "" {
		t.Fatal("acmed printed no admin API URL")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	var clients []*acme.Client
	var ids []string
	for range 3 {
		c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
		a, err := c.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@example.com"}}, acme.AcceptTOS)
		if err != nil {
			t.Fatal(err)
		}
		clients, ids = append(clients, c), append(ids, path.Base(a.URI))
	}

	var list struct {
		Accounts []adminAccount `json:"accounts"`
		Next     string         `json:"next"`
	}
	adminJSON(t, s, tokenFile, &list, "accounts", "list")
	if len(list.Accounts) != 3 || list.Next != "" {
		t.Fatalf("accounts list: %+v; want the 3 accounts and no next page", list)
	}
	adminJSON(t, s, tokenFile, &list, "accounts", "list", "--limit", "2")
	if len(list.Accounts) != 2 || list.Next == "" {
		t.Fatalf("accounts list --limit 2: %+v; want 2 accounts and a next page", list)
	}

	var shown adminAccount
	adminJSON(t, s, tokenFile, &shown, "accounts", "show", ids[0])
	if shown.ID != ids[0] || shown.Status != "valid" || shown.KeyThumbprint == "" || len(shown.Contact) != 1 {
		t.Fatalf("accounts show: %+v", shown)
	}
	if out, _, err := adminCLI(t, s, tokenFile, "accounts", "show", ids[0]); err != nil || !strings.Contains(out, "status: valid") {
		t.Fatalf("accounts show (text): %q, %v", out, err)
	}

	adminJSON(t, s, tokenFile, &shown, "accounts", "deactivate", ids[0])
	if shown.Status != "deactivated" {
		t.Fatalf("accounts deactivate: %+v", shown)
	}
	_, err := clients[0].AuthorizeOrder(ctx, acme.DomainIDs("after.example"))
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("new order by a deactivated account: %v; want unauthorized", err)
	}
	if _, err := clients[1].AuthorizeOrder(ctx, acme.DomainIDs("still.example")); err != nil {
		t.Fatalf("new order by another account: %v", err)
	}

	log := s.ReadLog()
	for _, want := range []string{
		"event=admin.accounts.list caller=token",
		"event=admin.accounts.show caller=token account=" + ids[0],
		"event=admin.accounts.deactivate caller=token account=" + ids[0],
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no audit line %q in acmed's log", want)
		}
	}

	// Bad requests: a JSON error from the server, one line and exit 1 here.
	for _, tc := range []struct {
		name  string
		token string
		args  []string
		want  string
	}{
		{"unknown account", tokenFile, []string{"accounts", "show", "nope"}, "404"},
		{"wrong token", writeToken(t, 0o600), []string{"accounts", "list"}, "401"},
		{"bad limit", tokenFile, []string{"accounts", "list", "--limit", "5000"}, "400"},
		{"missing ID", tokenFile, []string{"accounts", "show"}, "want 1 argument"},
		{"unknown command", tokenFile, []string{"accounts", "delete", ids[1]}, "unknown command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrong token" {
				if err := os.WriteFile(tc.token, []byte("not-the-token"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			stdout, stderr, err := adminCLI(t, s, tc.token, tc.args...)
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

// TestAdminListenerRefusals: serve refuses to start with one line when
// the admin API would be open, or its token readable by others.
func TestAdminListenerRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no authentication", []string{"--admin-listen", "127.0.0.1:0"}, "--admin-listen"},
		{"token file mode 0644", []string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", writeToken(t, 0o644)}, "--admin-token-file"},
		{"token file mode 0640", []string{"--admin-listen", "127.0.0.1:0", "--admin-token-file", writeToken(t, 0o640)}, "mode 0640"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...)
			cmd := exec.CommandContext(ctx, acmedBinary, args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v; want 1", err)
			}
			if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q: want one line naming %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestAdminClientCertificate: with --admin-client-ca, `acmed admin` acts
// with a client certificate of that CA instead of a token, and the audit
// line names the certificate's subject; a certificate of another CA is
// refused.
func TestAdminClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := writeClientCert(t, dir, "ops", "alice")
	_, otherCert, otherKey := writeClientCert(t, filepath.Join(dir, "other"), "someone else", "mallory")
	s := startAcmed(t, t.TempDir(), "--admin-listen", "127.0.0.1:0", "--admin-client-ca", caPEM)

	run := func(cert, key string) (string, string, error) {
		return adminCLI(t, s, "", "accounts", "list", "--json", "--admin-client-cert", cert, "--admin-client-key", key)
	}
	stdout, stderr, err := run(certFile, keyFile)
	if err != nil || !strings.Contains(stdout, `"accounts"`) {
		t.Fatalf("accounts list with a client certificate: %v\n%s%s", err, stdout, stderr)
	}
	if !strings.Contains(s.ReadLog(), `event=admin.accounts.list caller="cert:CN=alice"`) {
		t.Error("no audit line naming the certificate's subject")
	}
	if _, stderr, err = run(otherCert, otherKey); err == nil || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("a certificate of another CA: %v, %q; want exit 1 with one line", err, stderr)
	}
	if _, stderr, err = adminCLI(t, s, "", "accounts", "list"); err == nil || !strings.Contains(stderr, "--admin-token-file") {
		t.Fatalf("no credential at all: %v, %q; want exit 1 naming --admin-token-file", err, stderr)
	}
}

// writeClientCert writes a CA certificate and a client certificate for cn
// with its key, PEM, into dir, and returns the three paths.
func writeClientCert(t *testing.T, dir, caName, cn string) (caFile, certFile, keyFile string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: caName},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("client.pem", "CERTIFICATE", der), write("client.key", "PRIVATE KEY", keyDER)
}
