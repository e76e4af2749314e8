package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
