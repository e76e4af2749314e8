package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func newEABKey(kid string) *acme.EABKey {
	return &acme.EABKey{
		KID: kid, Name: "team " + kid, HMAC: []byte("0123456789abcdef0123456789abcdef"),
		Allow: []string{"*.team.example"}, Prevalidated: []string{"ci.team.example"},
		Profiles: []string{"server"}, MaxValidity: 72 * time.Hour, SPIFFEID: "spiffe://example/team",
		Expires: createdAt().Add(time.Hour), SingleUse: true, CreatedAt: createdAt(),
	}
}

// testEABKeys: keys round-trip every field, a kid is unique, updates are
// compare-and-set, and an expired key is still there (no TTL).
func testEABKeys(t *testing.T, open func(*testing.T) storage.Store) {
	s, ctx := open(t), t.Context()
	if _, err := s.EABKey(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("EABKey of a missing kid: %v, want ErrNotFound", err)
	}
	if keys, err := s.ListEABKeys(ctx); err != nil || len(keys) != 0 {
		t.Fatalf("ListEABKeys of an empty store: %v, %v", keys, err)
	}
	a, b := newEABKey("kid-a"), newEABKey("kid-b")
	mustNot(t, "CreateEABKey a", s.CreateEABKey(ctx, a))
	mustNot(t, "CreateEABKey b", s.CreateEABKey(ctx, b))
	if err := s.CreateEABKey(ctx, newEABKey("kid-a")); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("CreateEABKey of a taken kid: %v, want ErrConflict", err)
	}
	got, err := s.EABKey(ctx, "kid-a")
	mustNot(t, "EABKey", err)
	mustEqual(t, "EABKey", got, a)
	keys, err := s.ListEABKeys(ctx)
	mustNot(t, "ListEABKeys", err)
	mustEqual(t, "ListEABKeys", keys, []*acme.EABKey{a, b})

	refuse := errors.New("refused")
	if _, err := s.UpdateEABKey(ctx, "kid-a", func(*acme.EABKey) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("UpdateEABKey returned %v, want fn's error", err)
	}
	if _, err := s.UpdateEABKey(ctx, "nope", func(*acme.EABKey) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("UpdateEABKey of a missing kid: %v, want ErrNotFound", err)
	}
	// Concurrent binds all land: the update is compare-and-set.
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.UpdateEABKey(ctx, "kid-b", func(k *acme.EABKey) error {
				k.Accounts = append(k.Accounts, string(rune('a'+i)))
				return nil
			})
			errs <- err
		}()
	}
	for range n {
		mustNot(t, "concurrent UpdateEABKey", <-errs)
	}
	got, err = s.EABKey(ctx, "kid-b")
	mustNot(t, "EABKey", err)
	if len(got.Accounts) != n {
		t.Fatalf("after %d concurrent binds the key lists %d accounts: %v", n, len(got.Accounts), got.Accounts)
	}
	revoked, err := s.UpdateEABKey(ctx, "kid-a", func(k *acme.EABKey) error {
		k.Revoked, k.RevokedAt = true, createdAt()
		return nil
	})
	mustNot(t, "UpdateEABKey revoke", err)
	got, err = s.EABKey(ctx, "kid-a")
	mustNot(t, "EABKey", err)
	mustEqual(t, "revoked key", got, revoked)
}
