package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/storagetest"
)

const waitTimeout = 10 * time.Second

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}

func open(t *testing.T, path string, cfg embedded.Config) *embedded.Store {
	t.Helper()
	s, err := embedded.Open(path, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// consumeOne runs Consume until it hands out one job and returns that job.
func consumeOne(t *testing.T, s *embedded.Store) storage.Job {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan storage.Job, 1)
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(_ context.Context, j storage.Job) { got <- j })
	}()
	select {
	case j := <-got:
		cancel()
		<-consumed
		return j
	case err := <-consumed:
		t.Fatalf("Consume returned %v before handing out a job", err)
	case <-time.After(waitTimeout):
		t.Fatalf("no job handed out within %v", waitTimeout)
	}
	panic("unreachable")
}

func TestJobsSurviveRestart(t *testing.T) {
	job := storage.Job{AuthzID: "authz-1", ChallengeID: "chall-1"}
	for _, tc := range []struct {
		name string
		// beforeClose runs after job is enqueued.
		beforeClose func(t *testing.T, s *embedded.Store)
	}{
		{"never handed out", func(*testing.T, *embedded.Store) {}},
		{"handler cut short by shutdown", func(t *testing.T, s *embedded.Store) {
			ctx, cancel := context.WithCancel(t.Context())
			started := make(chan struct{})
			consumed := make(chan error, 1)
			go func() {
				consumed <- s.Consume(ctx, func(ctx context.Context, _ storage.Job) {
					close(started)
					<-ctx.Done()
				})
			}()
			select {
			case <-started:
			case <-time.After(waitTimeout):
				t.Fatalf("job not handed out within %v", waitTimeout)
			}
			cancel()
			if err := <-consumed; !errors.Is(err, context.Canceled) {
				t.Fatalf("Consume: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acmed.db")
			s, err := embedded.Open(path, embedded.Config{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := s.Enqueue(t.Context(), job); err != nil {
				t.Fatalf("Enqueue: %v", err)
			}
			tc.beforeClose(t, s)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			if got := consumeOne(t, open(t, path, embedded.Config{})); got != job {
				t.Fatalf("after reopening got job %+v, want %+v", got, job)
			}
		})
	}
}

func TestOpenLockedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acmed.db")
	first, err := embedded.Open(path, embedded.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, err = embedded.Open(path, embedded.Config{OpenTimeout: 50 * time.Millisecond})
	if !errors.Is(err, embedded.ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Open: got %v, want ErrLocked naming %s", err, path)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	open(t, path, embedded.Config{OpenTimeout: 50 * time.Millisecond})
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "acmed")
	path := filepath.Join(dir, "acmed.db")
	open(t, path, embedded.Config{})
	for _, tc := range []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may take bits away but must not have to.
		if perm := fi.Mode().Perm(); perm&^tc.want != 0 {
			t.Errorf("%s: mode %v, want at most %v", tc.path, perm, tc.want)
		}
	}
}

func TestClose(t *testing.T) {
	s, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping while open: %v", err)
	}
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(t.Context(), func(context.Context, storage.Job) {})
	}()
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close %d: %v", i+1, err)
		}
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Error("Ping after Close: nil")
	}
	select {
	case err := <-consumed:
		if err == nil {
			t.Error("Consume on a closed store returned nil")
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Consume still running %v after Close", waitTimeout)
	}
}

func TestConsumeTwice(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Consume(ctx, func(context.Context, storage.Job) { close(started) })
	}()
	// Once the first consumer has handled a job it is surely running.
	if err := s.Enqueue(ctx, storage.Job{AuthzID: "a", ChallengeID: "c"}); err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	select {
	case <-started:
	case <-time.After(waitTimeout):
		t.Fatalf("job not handed out within %v", waitTimeout)
	}
	if err := s.Consume(ctx, func(context.Context, storage.Job) {}); err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("second Consume: %v, want an error saying one runs", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first Consume: %v", err)
	}
}

// The shared contract leaves open what happens once a valid authorization
// is deactivated; this store stops offering it for reuse.
func TestDeactivatedAuthorizationIsNotReused(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	ctx := t.Context()
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "example.com"}
	a := &acme.Authorization{ID: "authz-1", AccountID: "acct-1", Identifier: ident, Status: acme.StatusPending}
	order := &acme.Order{ID: "order-1", AccountID: "acct-1", AuthzIDs: []string{a.ID}}
	if err := s.CreateOrder(ctx, order, []*acme.Authorization{a}); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
	for _, step := range []struct {
		status acme.Status
		want   error
	}{
		{acme.StatusValid, nil},
		{acme.StatusDeactivated, storage.ErrNotFound},
	} {
		if _, err := s.UpdateAuthorization(ctx, a.ID, func(a *acme.Authorization) error {
			a.Status = step.status
			return nil
		}); err != nil {
			t.Fatalf("UpdateAuthorization: %v", err)
		}
		if _, err := s.ValidAuthorization(ctx, "acct-1", ident, false); !errors.Is(err, step.want) {
			t.Fatalf("ValidAuthorization after %s: %v, want %v", step.status, err, step.want)
		}
	}
}
