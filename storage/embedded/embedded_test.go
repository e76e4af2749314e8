package embedded_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
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

func TestEstateConformance(t *testing.T) {
	storagetest.RunEstate(t, func(t *testing.T) storagetest.EstateStore {
		return open(t, filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	})
}

// TestBackendConformance: Expire is the sweep at the store's clock; Reopen
// is the next run on the same file.
func TestBackendConformance(t *testing.T) {
	paths := map[storage.Store]string{}
	b := storagetest.Backend{
		Open: func(t *testing.T, now func() time.Time, r storage.Retention) storage.Store {
			path := filepath.Join(t.TempDir(), "acmed.db")
			s := open(t, path, embedded.Config{Now: now, Retention: r.Finished, Grace: r.Grace, SweepEvery: -1})
			paths[s] = path
			return s
		},
		Expire: func(t *testing.T, s storage.Store, _, _ time.Time) {
			if _, err := s.(*embedded.Store).Sweep(t.Context()); err != nil {
				t.Fatalf("Sweep: %v", err)
			}
		},
		Reopen: func(t *testing.T, s storage.Store) storage.Store {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			return open(t, paths[s], embedded.Config{})
		},
	}
	storagetest.RunBackend(t, b)
	storagetest.RunEstateBackend(t, b)
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

// seed stores an order whose authorizations the jobs of queue are about.
func seed(t *testing.T, s *embedded.Store, authzIDs ...string) {
	t.Helper()
	order := &acme.Order{ID: "order-1", AccountID: "acct-1", AuthzIDs: authzIDs}
	var list []*acme.Authorization
	for _, id := range authzIDs {
		list = append(list, &acme.Authorization{
			ID: id, AccountID: "acct-1", Status: acme.StatusPending,
			Identifier: acme.Identifier{Type: acme.IdentifierDNS, Value: id + ".example"},
			Challenges: []acme.Challenge{{ID: id + "-http", Type: acme.ChallengeHTTP01, Status: acme.StatusPending}},
		})
	}
	if err := s.CreateOrder(t.Context(), order, list); err != nil {
		t.Fatalf("CreateOrder: %v", err)
	}
}

// queue queues the validation of authzID's challenge as responding to it
// does, and returns the claim.
func queue(t *testing.T, s *embedded.Store, authzID string) storage.Claim {
	t.Helper()
	var c storage.Claim
	_, err := s.UpdateAuthorization(t.Context(), authzID, func(a *acme.Authorization) error {
		a.Challenges[0].Queued = a.Challenges[0].Queued.Add(time.Minute)
		return nil
	}, storage.Queue(storage.Job{AuthzID: authzID, ChallengeID: authzID + "-http"}, &c))
	if err != nil || c.ID == "" {
		t.Fatalf("queueing UpdateAuthorization: claim %+v, %v", c, err)
	}
	return c
}

// consumeUntil runs Consume until it hands out last, and returns every
// claim handed out, last included, without finishing any. s must have one
// worker, so claims come in the order Consume hands them out.
func consumeUntil(t *testing.T, s *embedded.Store, last storage.Claim) []storage.Claim {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	got := make(chan storage.Claim, 100)
	consumed := make(chan error, 1)
	go func() {
		consumed <- s.Consume(ctx, func(_ context.Context, c storage.Claim) { got <- c })
	}()
	var claims []storage.Claim
	deadline := time.After(waitTimeout)
	for {
		select {
		case c := <-got:
			claims = append(claims, c)
			if c == last {
				cancel()
				if err := <-consumed; !errors.Is(err, context.Canceled) {
					t.Fatalf("Consume: %v", err)
				}
				return claims
			}
		case err := <-consumed:
			t.Fatalf("Consume returned %v after handing out %+v", err, claims)
		case <-deadline:
			t.Fatalf("%+v not handed out within %v; got %+v", last, waitTimeout, claims)
		}
	}
}

// TestJobsSurviveRestart: a claim its holder never finished is handed out
// by the next run, and again by the one after while nobody finishes it. A
// sentinel claim queued last shows what came before it: claims are handed
// out in the order they were queued.
func TestJobsSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		// settle is what the holder did with its claim before the stop.
		settle func(t *testing.T, s *embedded.Store, c storage.Claim) error
		left   bool
	}{
		{"never finished", func(*testing.T, *embedded.Store, storage.Claim) error { return nil }, true},
		{"finished by its result write", func(t *testing.T, s *embedded.Store, c storage.Claim) error {
			_, err := s.UpdateAuthorization(t.Context(), c.Job.AuthzID, func(a *acme.Authorization) error {
				a.Challenges[0].Status = acme.StatusValid
				return nil
			}, storage.Finishing(c))
			return err
		}, false},
		{"finished by a write that changes nothing", func(t *testing.T, s *embedded.Store, c storage.Claim) error {
			_, err := s.UpdateAuthorization(t.Context(), c.Job.AuthzID, func(*acme.Authorization) error { return nil }, storage.Finishing(c))
			return err
		}, false},
		{"finished by Finish", func(t *testing.T, s *embedded.Store, c storage.Claim) error {
			return s.Finish(t.Context(), c)
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acmed.db")
			s := open(t, path, embedded.Config{})
			seed(t, s, "authz-1", "authz-2")
			claim := queue(t, s, "authz-1")
			if err := tc.settle(t, s, claim); err != nil {
				t.Fatalf("settling the claim: %v", err)
			}
			sentinel := queue(t, s, "authz-2")
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			want := []storage.Claim{sentinel}
			if tc.left {
				want = []storage.Claim{claim, sentinel}
			}
			for run := 2; run <= 3; run++ {
				s := open(t, path, embedded.Config{Workers: 1})
				if got := consumeUntil(t, s, sentinel); !reflect.DeepEqual(got, want) {
					t.Fatalf("run %d handed out %+v, want %+v", run, got, want)
				}
				if err := s.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
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
		consumed <- s.Consume(t.Context(), func(context.Context, storage.Claim) {})
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
	path := filepath.Join(t.TempDir(), "acmed.db")
	s := open(t, path, embedded.Config{})
	seed(t, s, "authz-1")
	queue(t, s, "authz-1")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = open(t, path, embedded.Config{})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		first <- s.Consume(ctx, func(context.Context, storage.Claim) { close(started) })
	}()
	// Once the first consumer has handed out the leftover job it surely runs.
	select {
	case <-started:
	case <-time.After(waitTimeout):
		t.Fatalf("job not handed out within %v", waitTimeout)
	}
	if err := s.Consume(ctx, func(context.Context, storage.Claim) {}); err == nil || errors.Is(err, context.Canceled) {
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
