package integration

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestAdminBackupRestore: `acmed admin backup` copies the embedded store
// of a serving acmed; `acmed restore` refuses while acmed runs, then puts
// the copy back once it stopped; the account, its order and certificate
// are served again, and what came after the backup is gone.
func TestAdminBackupRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	dns := challengetest.StartDNS(t)
	h := challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "data")
	tokenFile := writeToken(t, 0o600)
	args := []string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}
	s := startAcmed(t, data, args...)

	key := newKey(t)
	c := &acme.Client{Key: key, DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	acct, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := issue(t, ctx, c, h, "backup.example")
	orders := listOrders(t, s, key, acct.URI, acct.OrdersURL)
	if len(orders) != 1 {
		t.Fatalf("orders before the backup: %q", orders)
	}

	backup := filepath.Join(t.TempDir(), "acmed-backup.db")
	var res struct {
		File  string `json:"file"`
		Bytes int64  `json:"bytes"`
	}
	adminJSON(t, s, tokenFile, &res, "backup", backup)
	if fi, err := os.Stat(backup); err != nil || fi.Size() != res.Bytes || res.File != backup {
		t.Fatalf("backup: %+v, file %v", res, err)
	}
	if !strings.Contains(s.ReadLog(), "event=admin.backup caller=token bytes=") {
		t.Error("no audit line for the backup")
	}

	// After the backup: an account that must not survive the restore.
	later := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	laterAcct, err := later.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}

	restore := func(t *testing.T) (string, error) {
		t.Helper()
		cmd := exec.CommandContext(ctx, acmedBinary, "restore", "--data", data, backup)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := restore(t)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(out, "stop acmed") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("restore while acmed runs: %v, %q; want exit 1 and one line saying to stop acmed", err, out)
	}

	s.Stop()
	if out, err := restore(t); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	s2 := startAcmed(t, data, args...)
	// The restarted acmed listens on another port: same paths, new base.
	moved := strings.NewReplacer(strings.TrimSuffix(s.dir, "/directory"), strings.TrimSuffix(s2.dir, "/directory"))
	c = &acme.Client{Key: key, DirectoryURL: s2.dir, HTTPClient: s2.httpClient()}
	got, err := c.GetReg(ctx, "")
	if err != nil || got.URI != moved.Replace(acct.URI) {
		t.Fatalf("account after restore: %+v, %v; want %s", got, err, acct.URI)
	}
	if orders = listOrders(t, s2, key, got.URI, got.OrdersURL); len(orders) != 1 {
		t.Fatalf("orders after restore: %q", orders)
	}
	o, err := c.GetOrder(ctx, orders[0])
	if err != nil || o.Status != acme.StatusValid || o.CertURL == "" {
		t.Fatalf("order after restore: %+v, %v", o, err)
	}
	chain, err := c.FetchCert(ctx, o.CertURL, false)
	if err != nil || len(chain) == 0 || !bytes.Equal(chain[0], der[0]) {
		t.Fatalf("certificate after restore: %v", err)
	}
	var shown struct {
		ID string `json:"id"`
	}
	stdout, stderr, err := adminCLI(t, s2, tokenFile, "accounts", "show", path.Base(laterAcct.URI), "--json")
	if err == nil || !strings.Contains(stderr, "404") {
		t.Fatalf("an account made after the backup: %q %q %v; want 404", stdout, stderr, err)
	}
	adminJSON(t, s2, tokenFile, &shown, "accounts", "show", path.Base(acct.URI))
}

// listOrders reads an account's orders list (one page is enough here).
func listOrders(t *testing.T, s *server, key crypto.Signer, kid, url string) []string {
	t.Helper()
	body := postAsGet(t, s, key, kid, url)
	var list struct {
		Orders []string `json:"orders"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("orders list %q: %v", body, err)
	}
	return list.Orders
}

// TestAdminBackupOnRedis: a Redis store is not copied by acmed; the CLI
// names Redis's own mechanisms and exits 1.
func TestAdminBackupOnRedis(t *testing.T) {
	r := redistest.Start(t).URL
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	tokenFile := writeToken(t, 0o600)
	s := startAcmed(t, data, "--store", r, "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile)
	_, stderr, err := adminCLI(t, s, tokenFile, "backup", filepath.Join(t.TempDir(), "b.db"))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr, "BGSAVE") || !strings.Contains(stderr, "AOF") {
		t.Fatalf("backup on Redis: %v, %q; want exit 1 naming BGSAVE and AOF", err, stderr)
	}
}
