package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// seeded writes a store with enough accounts that its buckets have pages
// of their own, records a CA, closes it and returns its path.
func seeded(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "acmed.db")
	s, err := Open(path, Config{SweepEvery: -1})
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
	if _, err := s.ClaimCA(ctx, storage.CAIdentity{Root: "aa", Intermediate: "bb"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileMeta is the meta page bbolt would use.
func fileMeta(t *testing.T, path string) meta {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m0, ok0 := parseMeta(b)
	m1, ok1 := parseMeta(b[m0.pageSize:])
	if !ok0 || !ok1 {
		t.Fatalf("fresh file has a bad meta page: %v %v", ok0, ok1)
	}
	if m1.txid > m0.txid {
		return m1
	}
	return m0
}

// bucketPage is the page of the accounts bucket's root.
func bucketPage(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pg uint64
	_ = db.View(func(tx *bolt.Tx) error { pg = uint64(tx.Bucket([]byte(bucketAccounts)).Root()); return nil })
	if pg == 0 {
		t.Fatal("accounts bucket is inline; seed more")
	}
	return pg
}

func flip(t *testing.T, path string, offsets ...uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, off := range offsets {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, int64(off)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenDamaged: a damaged file is an error naming it, never a fault, a
// panic or a store that starts empty.
func TestOpenDamaged(t *testing.T) {
	type damage func(t *testing.T, path string)
	truncateTo := func(at func(m meta) int64) damage {
		return func(t *testing.T, path string) {
			if err := os.Truncate(path, at(fileMeta(t, path))); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		damage damage
		want   string
	}{
		{"zero length", truncateTo(func(meta) int64 { return 0 }), "is empty (0 bytes)"},
		{"truncated in the first page header", truncateTo(func(meta) int64 { return 10 }), "both meta pages"},
		{"truncated in the first meta page", truncateTo(func(meta) int64 { return 100 }), "truncated"},
		{"truncated after the first page", truncateTo(func(m meta) int64 { return int64(m.pageSize) }), "truncated"},
		{"truncated in the third page", truncateTo(func(m meta) int64 { return int64(2*m.pageSize + 100) }), "truncated"},
		{"truncated in half", truncateTo(func(m meta) int64 { return int64(m.pgid * m.pageSize / 2) }), "truncated"},
		{"last page cut off", truncateTo(func(m meta) int64 { return int64((m.pgid - 1) * m.pageSize) }), "truncated"},
		{"last byte cut off", truncateTo(func(m meta) int64 { return int64(m.pgid*m.pageSize) - 1 }), "truncated"},
		{"meta page 0 flipped", func(t *testing.T, path string) { flip(t, path, 16+20) }, "meta page 0 is damaged"},
		{"meta page 1 flipped", func(t *testing.T, path string) {
			flip(t, path, fileMeta(t, path).pageSize+16+40)
		}, "meta page 1 is damaged"},
		{"both meta pages flipped", func(t *testing.T, path string) {
			flip(t, path, 16, fileMeta(t, path).pageSize+16)
		}, "both meta pages"},
		{"root page type flipped", func(t *testing.T, path string) {
			m := fileMeta(t, path)
			flip(t, path, m.root*m.pageSize+8) // the page header's flags
		}, "damaged"},
		{"bucket page type flipped", func(t *testing.T, path string) {
			flip(t, path, bucketPage(t, path)*fileMeta(t, path).pageSize+8)
		}, "damaged"},
		{"bucket page element count flipped", func(t *testing.T, path string) {
			flip(t, path, bucketPage(t, path)*fileMeta(t, path).pageSize+11) // high byte of count
		}, "damaged"},
		{"bucket page ID flipped", func(t *testing.T, path string) {
			flip(t, path, bucketPage(t, path)*fileMeta(t, path).pageSize)
		}, "damaged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := seeded(t)
			tc.damage(t, path)
			s, err := Open(path, Config{SweepEvery: -1})
			if err == nil {
				s.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.want) || strings.Contains(msg, "\n") {
				t.Fatalf("Open: %q; want one line naming %s and saying %q", msg, path, tc.want)
			}
			if strings.Contains(msg, "panic") || strings.Contains(msg, "goroutine") {
				t.Fatalf("Open: %q speaks of panics", msg)
			}
		})
	}
}

// TestOpenIntact: the checks pass a whole file, and a missing one is a new
// store.
func TestOpenIntact(t *testing.T) {
	path := seeded(t)
	s, err := Open(path, Config{SweepEvery: -1})
	if err != nil {
		t.Fatalf("Open of an intact file: %v", err)
	}
	defer s.Close()
	if _, err := s.Account(t.Context(), "acct-007"); err != nil {
		t.Fatalf("Account: %v", err)
	}
	got, err := s.ClaimCA(t.Context(), storage.CAIdentity{Root: "cc", Intermediate: "dd"})
	if err != nil || got != (storage.CAIdentity{Root: "aa", Intermediate: "bb"}) {
		t.Fatalf("ClaimCA after reopening: %+v, %v; want the recorded aa/bb", got, err)
	}
}

// TestClaimCAExistingFile: a file that was there before Open and records
// no CA is adopted if an earlier acmed stored records in it, refused if it
// holds none, and a CA bucket without its record is damage.
func TestClaimCAExistingFile(t *testing.T) {
	id := storage.CAIdentity{Root: "aa", Intermediate: "bb"}
	for _, tc := range []struct {
		name    string
		prepare func(t *testing.T, s *Store)
		want    string // "" for adopted
	}{
		{"earlier acmed's records", func(t *testing.T, s *Store) {
			if err := s.CreateAccount(t.Context(), &acme.Account{ID: "a1", KeyThumbprint: "k1", Status: acme.StatusValid}); err != nil {
				t.Fatal(err)
			}
		}, ""},
		{"no records", func(*testing.T, *Store) {}, "records no CA and holds no records"},
		{"CA record lost", func(t *testing.T, s *Store) {
			err := s.db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte(bucketCA)); return err })
			if err != nil {
				t.Fatal(err)
			}
		}, "its CA record is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acmed.db")
			s, err := Open(path, Config{SweepEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			tc.prepare(t, s)
			s.Close()

			s, err = Open(path, Config{SweepEvery: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			got, err := s.ClaimCA(t.Context(), id)
			if tc.want == "" {
				if err != nil || got != id {
					t.Fatalf("ClaimCA: %+v, %v; want %+v adopted", got, err, id)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("ClaimCA: %+v, %v; want an error naming %s and saying %q", got, err, path, tc.want)
			}
		})
	}
}

// lockedBuffer is a log sink the test reads while the store writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// waitLog polls the log until it holds every one of want.
func waitLog(t *testing.T, logs *lockedBuffer, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		missing := ""
		for _, w := range want {
			if !strings.Contains(logs.String(), w) {
				missing = w
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("log has no %q within 10s:\n%s", missing, logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestJobPanicLogged: a leftover job whose handler panics is logged and
// the next one still runs.
func TestJobPanicLogged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acmed.db")
	s, err := Open(path, Config{SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	a1 := &acme.Authorization{ID: "z1", AccountID: "a1", Status: acme.StatusPending,
		Challenges: []acme.Challenge{{ID: "c1", Type: acme.ChallengeHTTP01, Status: acme.StatusPending}}}
	a2 := &acme.Authorization{ID: "z2", AccountID: "a1", Status: acme.StatusPending,
		Challenges: []acme.Challenge{{ID: "c2", Type: acme.ChallengeHTTP01, Status: acme.StatusPending}}}
	if err := s.CreateOrder(ctx, &acme.Order{ID: "o1", AccountID: "a1", AuthzIDs: []string{"z1", "z2"}}, []*acme.Authorization{a1, a2}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"z1", "z2"} {
		var c storage.Claim
		_, err := s.UpdateAuthorization(ctx, id, func(a *acme.Authorization) error {
			a.Challenges[0].Queued = a.Challenges[0].Queued.Add(time.Minute)
			return nil
		}, storage.Queue(storage.Job{AuthzID: id, ChallengeID: id}, &c))
		if err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	var logs lockedBuffer
	s, err = Open(path, Config{SweepEvery: -1, Workers: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	second := make(chan storage.Claim, 1)
	done := make(chan error, 1)
	go func() {
		done <- s.Consume(cctx, func(_ context.Context, c storage.Claim) {
			if c.Job.AuthzID == "z1" {
				var m map[string]int
				m["boom"] = 1 // a panic
			}
			second <- c
		})
	}()
	select {
	case c := <-second:
		if c.Job.AuthzID != "z2" {
			t.Fatalf("handed out %+v, want z2's job", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job after the one that panicked was not handed out")
	}
	waitLog(t, &logs, "job failed", path)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Consume: %v", err)
	}
}

// TestTruncatedWhileRunning: bbolt maps the file, so once it is truncated
// under a running store a read past the new end faults (SIGBUS). The
// sweep and the job workers meet it, log it, and the process carries on.
func TestTruncatedWhileRunning(t *testing.T) {
	path := seeded(t)
	var logs lockedBuffer
	s, err := Open(path, Config{SweepEvery: time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := os.Truncate(path, int64(2*fileMeta(t, path).pageSize)); err != nil {
		t.Fatal(err)
	}
	waitLog(t, &logs, "sweep failed", "reading the file failed", path)
	if err := s.Ping(t.Context()); err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, ErrDamaged) {
		t.Fatalf("Ping after the fault: %v; want ErrDamaged naming %s", err, path)
	}
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs after the fault")
	}
}
