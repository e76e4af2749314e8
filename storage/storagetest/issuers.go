package storagetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/storage"
)

// IssuersStore is a store that keeps the CA's issuer set.
type IssuersStore interface {
	storage.Store
	storage.Issuers
}

// RunIssuers runs the issuer-set part of the suite; open is as for Run.
func RunIssuers(t *testing.T, open func(t *testing.T) IssuersStore) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, func(*testing.T) IssuersStore)
	}{
		{"Empty", testIssuersEmpty},
		{"Update", testIssuersUpdate},
		{"Abort", testIssuersAbort},
		{"Concurrent", testIssuersConcurrent},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, open) })
	}
}

func newIssuer(name, state string) storage.Issuer {
	return storage.Issuer{
		Name: name, State: state, CertPEM: []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
		Created: createdAt(), Activated: createdAt().Add(time.Hour), WrappedKey: []byte{0, 1, 2, 0xff},
		KeyLabel: "acmed-int-2", By: "token",
	}
}

// testIssuersEmpty: a store that never had a set reads an empty one.
func testIssuersEmpty(t *testing.T, open func(*testing.T) IssuersStore) {
	s, ctx := open(t), t.Context()
	set, err := s.Issuers(ctx)
	mustNot(t, "Issuers", err)
	mustEqual(t, "revision", set.Revision, uint64(0))
	mustEqual(t, "issuers", len(set.Issuers), 0)
	if set.Active() != nil {
		t.Fatal("an empty set has an active issuer")
	}
}

// testIssuersUpdate: each update is stored whole, with the revision one
// higher, and read back as written.
func testIssuersUpdate(t *testing.T, open func(*testing.T) IssuersStore) {
	s, ctx := open(t), t.Context()
	first := newIssuer("0011223344556677", storage.IssuerActive)
	first.Original = true
	got, err := s.UpdateIssuers(ctx, func(set *storage.IssuerSet) error {
		set.Issuers = append(set.Issuers, first)
		return nil
	})
	mustNot(t, "UpdateIssuers", err)
	mustEqual(t, "revision after the first update", got.Revision, uint64(1))
	second := newIssuer("8899aabbccddeeff", storage.IssuerActive)
	got, err = s.UpdateIssuers(ctx, func(set *storage.IssuerSet) error {
		set.Issuers[0].State, set.Issuers[0].Retired = storage.IssuerRetired, createdAt().Add(2*time.Hour)
		set.Issuers = append(set.Issuers, second)
		return nil
	})
	mustNot(t, "UpdateIssuers", err)
	mustEqual(t, "revision after the second update", got.Revision, uint64(2))
	read, err := s.Issuers(ctx)
	mustNot(t, "Issuers", err)
	first.State, first.Retired = storage.IssuerRetired, createdAt().Add(2*time.Hour)
	mustEqual(t, "set read back", read, &storage.IssuerSet{Revision: 2, Issuers: []storage.Issuer{first, second}})
	mustEqual(t, "active", read.Active().Name, second.Name)
}

// testIssuersAbort: fn's error is returned as it is and stores nothing.
func testIssuersAbort(t *testing.T, open func(*testing.T) IssuersStore) {
	s, ctx := open(t), t.Context()
	_, err := s.UpdateIssuers(ctx, func(set *storage.IssuerSet) error {
		set.Issuers = append(set.Issuers, newIssuer("00", storage.IssuerActive))
		return nil
	})
	mustNot(t, "UpdateIssuers", err)
	errStop := errors.New("stop")
	_, err = s.UpdateIssuers(ctx, func(set *storage.IssuerSet) error {
		set.Issuers = nil
		return errStop
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("UpdateIssuers with a failing fn: %v, want %v", err, errStop)
	}
	read, err := s.Issuers(ctx)
	mustNot(t, "Issuers", err)
	mustEqual(t, "revision", read.Revision, uint64(1))
	mustEqual(t, "issuers", len(read.Issuers), 1)
}

// testIssuersConcurrent: updates racing on one set are each applied once,
// none lost.
func testIssuersConcurrent(t *testing.T, open func(*testing.T) IssuersStore) {
	s, ctx := open(t), t.Context()
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.UpdateIssuers(ctx, func(set *storage.IssuerSet) error {
				set.Issuers = append(set.Issuers, newIssuer(string(rune('a'+i)), storage.IssuerRetired))
				return nil
			})
		})
	}
	wg.Wait()
	for _, err := range errs {
		mustNot(t, "UpdateIssuers", err)
	}
	read, err := s.Issuers(ctx)
	mustNot(t, "Issuers", err)
	mustEqual(t, "revision", read.Revision, uint64(n))
	seen := map[string]bool{}
	for _, is := range read.Issuers {
		seen[is.Name] = true
	}
	mustEqual(t, "issuers kept", len(seen), n)
}
