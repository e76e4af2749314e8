package embedded_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/embedded"
)

// TestBackupRestoreRoundTrip: accounts, orders (with their authorizations)
// and certificates written before a backup taken while the store is open
// are all there after a restore; what was written after it is not.
func TestBackupRestoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "live.db"), embedded.Config{})
	ctx := t.Context()
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	acct := &acme.Account{ID: "a1", Status: acme.StatusValid, KeyThumbprint: "k1", Contact: []string{"mailto:a@example.com"}, CreatedAt: exp}
	az := &acme.Authorization{ID: "a1.z1", AccountID: "a1", Identifier: acme.Identifier{Type: acme.IdentifierDNS, Value: "x.example"}, Status: acme.StatusValid, Expires: exp}
	order := &acme.Order{ID: "a1.o1", AccountID: "a1", Status: acme.StatusValid, Expires: exp, Identifiers: []acme.Identifier{az.Identifier}, AuthzIDs: []string{az.ID}, CertSerial: "abc", CreatedAt: exp}
	cert := &acme.Certificate{Serial: "abc", AccountID: "a1", OrderID: order.ID, ChainPEM: []byte("PEM"), Identifiers: order.Identifiers, NotAfter: exp}
	if err := s.CreateAccount(ctx, acct); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOrder(ctx, order, []*acme.Authorization{az}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	var announced int64
	n, err := s.Backup(ctx, func(size int64) (io.Writer, error) { announced = size; return &buf, nil })
	if err != nil {
		t.Fatal(err)
	}
	if n != announced || int64(buf.Len()) != n {
		t.Fatalf("Backup wrote %d bytes (buffer %d), announced %d", n, buf.Len(), announced)
	}
	// Written after the backup: must not come back.
	if err := s.CreateAccount(ctx, &acme.Account{ID: "a2", Status: acme.StatusValid, KeyThumbprint: "k2"}); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := embedded.CheckBackup(backup); err != nil {
		t.Fatalf("CheckBackup: %v", err)
	}

	target := filepath.Join(dir, "restored", "acmed.db")
	if err := embedded.Restore(backup, target); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	r := open(t, target, embedded.Config{})
	gotAcct, err := r.Account(ctx, "a1")
	if err != nil || !reflect.DeepEqual(gotAcct, acct) {
		t.Errorf("restored account: %+v, %v; want %+v", gotAcct, err, acct)
	}
	if gotAcct, err = r.AccountByKey(ctx, "k1"); err != nil || gotAcct.ID != "a1" {
		t.Errorf("restored key index: %v, %v", gotAcct, err)
	}
	if got, err := r.Order(ctx, order.ID); err != nil || !reflect.DeepEqual(got, order) {
		t.Errorf("restored order: %+v, %v; want %+v", got, err, order)
	}
	if got, err := r.Authorization(ctx, az.ID); err != nil || got.Identifier != az.Identifier {
		t.Errorf("restored authorization: %+v, %v", got, err)
	}
	if got, err := r.Certificate(ctx, "abc"); err != nil || !reflect.DeepEqual(got, cert) {
		t.Errorf("restored certificate: %+v, %v; want %+v", got, err, cert)
	}
	if ids, _, err := r.ListAccounts(ctx, "", 10); err != nil || !reflect.DeepEqual(ids, []string{"a1"}) {
		t.Errorf("restored accounts: %q, %v; want only a1", ids, err)
	}
}

func TestRestoreRefusals(t *testing.T) {
	dir := t.TempDir()
	live := filepath.Join(dir, "live.db")
	s := open(t, live, embedded.Config{})
	backup := filepath.Join(dir, "backup.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Backup(t.Context(), func(int64) (io.Writer, error) { return f, nil }); err != nil {
		t.Fatal(err)
	}
	f.Close()
	raw, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, raw[:len(raw)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	notStore := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notStore, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("store held by a running acmed", func(t *testing.T) {
		err := embedded.Restore(backup, live)
		if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), live) {
			t.Fatalf("Restore onto an open store: %v; want ErrLocked naming it", err)
		}
	})
	for _, tc := range []struct{ name, from string }{
		{"truncated backup", truncated},
		{"not a store", notStore},
		{"missing backup", filepath.Join(dir, "nope.db")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "acmed.db")
			if err := embedded.Restore(tc.from, target); err == nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Restore from %s: %v; want a one-line error", tc.name, err)
			}
			if _, err := os.Stat(target); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused restore left %s behind", target)
			}
		})
	}
}
