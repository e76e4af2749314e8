package main

// These tests run the real binary: what an operator sees of a refused
// start is its exit status and its stderr, and a store file that faults
// must be met by the process, not by a test that could recover.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/integration/acmedtest"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis/redistest"
)

var (
	binDir string
	build  = sync.OnceValues(func() (string, error) { return acmedtest.Build(binDir) })
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acmed-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs acmed")
	}
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// refused runs acmed, which must exit with status 1 and one line on
// stderr holding every one of want, and no trace of a crash.
func refused(t *testing.T, bin string, args []string, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("acmed %q: %v, want exit status 1; stderr:\n%s", args, err, stderr.String())
	}
	out := stderr.String()
	if strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "acmed: ") {
		t.Fatalf("acmed %q: stderr is not one line starting \"acmed: \":\n%s", args, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("acmed %q: stderr lacks %q:\n%s", args, w, out)
		}
	}
	for _, bad := range []string{"panic", "goroutine", "SIGBUS", "SIGSEGV"} {
		if strings.Contains(out, bad) {
			t.Errorf("acmed %q: stderr speaks of %q:\n%s", args, bad, out)
		}
	}
}

func initDir(t *testing.T, bin, dir string) {
	t.Helper()
	if out, err := exec.Command(bin, "init", "--data", dir).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v\n%s", err, out)
	}
}

func identity(t *testing.T, dir string) storage.CAIdentity {
	t.Helper()
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return storage.CAIdentity{Root: fingerprint(l.Root()), Intermediate: fingerprint(l.Intermediate())}
}

// seedStore writes the store acmed would have left in dir: its CA recorded
// and enough accounts that a bucket has pages of its own.
func seedStore(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "acmed.db")
	s, err := embedded.Open(path, embedded.Config{SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for i := range 200 {
		a := &acme.Account{ID: fmt.Sprintf("acct-%03d", i), KeyThumbprint: fmt.Sprintf("key-%03d", i),
			Status: acme.StatusValid, Key: bytes.Repeat([]byte{'k'}, 100)}
		if err := s.CreateAccount(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ClaimCA(ctx, identity(t, dir)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// layout reads, through bbolt, the page size, where the pages end, and the
// page of the accounts bucket's root.
func layout(t *testing.T, path string) (pageSize, end, accountsPage int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		end = tx.Size()
		accountsPage = int64(tx.Bucket([]byte("accounts")).Root())
		return nil
	})
	if accountsPage == 0 {
		t.Fatal("the accounts bucket is inline; seed more")
	}
	return int64(db.Info().PageSize), end, accountsPage
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xff
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedStoreRefused: acmed stops with one line naming the store file
// and exit status 1, whatever the damage; the same file undamaged starts.
func TestDamagedStoreRefused(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string, pageSize, end, accountsPage int64)
		want   string
	}{
		{"zero length", truncate(func(_, _ int64) int64 { return 0 }), "is empty (0 bytes)"},
		{"truncated to 100 bytes", truncate(func(_, _ int64) int64 { return 100 }), "truncated"},
		{"truncated to one page", truncate(func(ps, _ int64) int64 { return ps }), "truncated"},
		{"truncated in the third page", truncate(func(ps, _ int64) int64 { return 2*ps + 100 }), "truncated"},
		{"truncated in half", truncate(func(_, end int64) int64 { return end / 2 }), "truncated"},
		{"last byte cut off", truncate(func(_, end int64) int64 { return end - 1 }), "truncated"},
		{"meta page 0 flipped", func(t *testing.T, path string, _, _, _ int64) { flipByte(t, path, 16+20) }, "meta page 0"},
		{"meta page 1 flipped", func(t *testing.T, path string, ps, _, _ int64) { flipByte(t, path, ps+16+40) }, "meta page 1"},
		{"data page type flipped", func(t *testing.T, path string, ps, _, pg int64) { flipByte(t, path, pg*ps+8) }, "damaged"},
		{"data page count flipped", func(t *testing.T, path string, ps, _, pg int64) { flipByte(t, path, pg*ps+11) }, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			initDir(t, bin, dir)
			path := seedStore(t, dir)
			ps, end, pg := layout(t, path)
			tc.damage(t, path, ps, end, pg)
			refused(t, bin, []string{"--data", dir, "--listen", "127.0.0.1:0"}, path, tc.want)
		})
	}
	t.Run("undamaged", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		seedStore(t, dir)
		acmedtest.Start(t, bin, "--data", dir, "--listen", "127.0.0.1:0")
	})
}

func truncate(at func(pageSize, end int64) int64) func(*testing.T, string, int64, int64, int64) {
	return func(t *testing.T, path string, ps, end, _ int64) {
		t.Helper()
		if err := os.Truncate(path, at(ps, end)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartRefused: the CA files, the data directory and the store's CA
// record each stop a start that would be unsafe, with the fix named.
func TestStartRefused(t *testing.T) {
	bin := binary(t)
	serve := func(dir string, more ...string) []string {
		return append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, more...)
	}
	t.Run("key readable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		key := filepath.Join(dir, ca.IntermediateKeyFile)
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		refused(t, bin, serve(dir), "chmod 600 "+key)
	})
	t.Run("key missing", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		key := filepath.Join(dir, ca.IntermediateKeyFile)
		if err := os.Remove(key); err != nil {
			t.Fatal(err)
		}
		refused(t, bin, serve(dir), key, "no such file")
	})
	t.Run("data directory writable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		refused(t, bin, serve(dir), "chmod go-w "+dir)
	})
	t.Run("init into a directory writable by others", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
		refused(t, bin, []string{"init", "--data", dir}, "chmod go-w "+dir)
	})
	t.Run("store of another CA", func(t *testing.T) {
		dir, other := filepath.Join(t.TempDir(), "data"), filepath.Join(t.TempDir(), "other")
		initDir(t, bin, dir)
		initDir(t, bin, other)
		path := seedStore(t, other)
		if err := os.Rename(path, filepath.Join(dir, "acmed.db")); err != nil {
			t.Fatal(err)
		}
		refused(t, bin, serve(dir), "belongs to another CA",
			"the store's root certificate has SHA-256 fingerprint "+colonHex(identity(t, other).Root),
			"--data "+dir+" has "+colonHex(identity(t, dir).Root))
	})
	t.Run("store without its CA record", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		path := filepath.Join(dir, "acmed.db")
		s, err := embedded.Open(path, embedded.Config{SweepEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		refused(t, bin, serve(dir), path, "records no CA")
	})
	t.Run("store without the CA files", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		initDir(t, bin, dir)
		path := seedStore(t, dir)
		for _, f := range []string{ca.RootCertFile, ca.RootKeyFile, ca.IntermediateCertFile, ca.IntermediateKeyFile} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		refused(t, bin, serve(dir), "--data "+dir+" holds no CA", path, "restore the CA files")
		if ca.Exists(dir) {
			t.Fatal("serve created a CA beside the store of another")
		}
	})
}

// TestRedisCA: serve never creates a CA for a Redis store; the first
// replica records its CA there, and one with another CA is refused, naming
// both fingerprints.
func TestRedisCA(t *testing.T) {
	bin := binary(t)
	rds := redistest.Start(t)
	first, second, empty := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "c")
	initDir(t, bin, first)
	initDir(t, bin, second)

	refused(t, bin, []string{"serve", "--data", empty, "--store", rds.URL, "--listen", "127.0.0.1:0"},
		`--data `+empty+` holds no CA`, `run "acmed init --data `+empty+`" once`)
	if ca.Exists(empty) {
		t.Fatal("serve on Redis created a CA")
	}

	acmedtest.Start(t, bin, "serve", "--data", first, "--store", rds.URL, "--listen", "127.0.0.1:0")
	refused(t, bin, []string{"serve", "--data", second, "--store", rds.URL, "--listen", "127.0.0.1:0"},
		"store "+rds.URL+" belongs to another CA",
		"the store's root certificate has SHA-256 fingerprint "+colonHex(identity(t, first).Root),
		"--data "+second+" has "+colonHex(identity(t, second).Root))

	// A copy of the first replica's --data joins.
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(first)); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{ca.RootKeyFile, ca.IntermediateKeyFile} { // os.CopyFS drops modes
		if err := os.Chmod(filepath.Join(copyDir, key), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	acmedtest.Start(t, bin, "serve", "--data", copyDir, "--store", rds.URL, "--listen", "127.0.0.1:0")
}
