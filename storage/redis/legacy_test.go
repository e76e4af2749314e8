package redis_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/record"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestLegacyJSONRecords: an authorization an earlier acmed stored as JSON
// reads as it was; an update that changes nothing leaves it JSON and
// queues nothing, whether it starts from a read or a held copy; one that
// changes it writes the binary form.
func TestLegacyJSONRecords(t *testing.T) {
	srv := redistest.Start(t)
	c := client(t, srv.URL)
	now := time.Date(2031, 5, 1, 0, 0, 0, 0, time.UTC)
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "legacy.example"}
	authz := &acme.Authorization{
		ID: storage.ScopedID("acct1", "z1"), AccountID: "acct1", Identifier: ident, Status: acme.StatusPending,
		Expires: now.Add(7 * day), Challenges: []acme.Challenge{
			{ID: "c1", Type: acme.ChallengeHTTP01, Token: "tok", Status: acme.StatusPending},
		},
	}
	order := &acme.Order{
		ID: storage.ScopedID("acct1", "o1"), AccountID: "acct1", Status: acme.StatusPending,
		Identifiers: []acme.Identifier{ident}, AuthzIDs: []string{authz.ID}, Expires: now.Add(7 * day), CreatedAt: now,
	}
	key := "acmed:{a:acct1}:authz:" + authz.ID
	unchanged := func(*acme.Authorization) error { return nil }
	start := func(a *acme.Authorization) error {
		a.Challenges[0].Status = acme.StatusProcessing
		return nil
	}
	for _, tc := range []struct {
		name       string
		fn         func(*acme.Authorization) error
		held       bool // start From the copy read before
		wantBinary bool // stored in the binary form after, and a job queued
	}{
		{"unchanged", unchanged, false, false},
		{"unchanged from a held copy", unchanged, true, false},
		{"changed", start, false, true},
		{"changed from a held copy", start, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flush(t, c)
			s := open(t, srv.URL, redis.Config{Now: func() time.Time { return now }})
			ctx := t.Context()
			if err := s.CreateOrder(ctx, order, []*acme.Authorization{authz}); err != nil {
				t.Fatal(err)
			}
			legacy, err := json.Marshal(authz)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.SetArgs(ctx, key, legacy, goredis.SetArgs{KeepTTL: true}).Err(); err != nil {
				t.Fatal(err)
			}
			got, err := s.Authorization(ctx, authz.ID)
			if err != nil {
				t.Fatalf("Authorization: %v", err)
			}
			if !reflect.DeepEqual(got, authz) {
				t.Fatalf("read %+v, want %+v", got, authz)
			}
			var claim storage.Claim
			opts := []storage.Option{storage.Queue(storage.Job{AuthzID: authz.ID, ChallengeID: "c1"}, &claim)}
			if tc.held {
				opts = append(opts, storage.From(got))
			}
			want := *authz
			want.Challenges = append([]acme.Challenge(nil), authz.Challenges...)
			_ = tc.fn(&want)
			updated, err := s.UpdateAuthorization(ctx, authz.ID, tc.fn, opts...)
			if err != nil {
				t.Fatalf("UpdateAuthorization: %v", err)
			}
			if !reflect.DeepEqual(updated, &want) {
				t.Fatalf("update returned %+v, want %+v", updated, &want)
			}
			if queued := claim.ID != ""; queued != tc.wantBinary {
				t.Errorf("job queued: %v, want %v", queued, tc.wantBinary)
			}
			raw, err := c.Get(ctx, key).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if binary := !record.Legacy(raw); binary != tc.wantBinary {
				t.Errorf("stored %q: binary %v, want %v", raw, binary, tc.wantBinary)
			}
			stored, err := s.Authorization(ctx, authz.ID)
			if err != nil {
				t.Fatalf("Authorization after: %v", err)
			}
			if !reflect.DeepEqual(stored, &want) {
				t.Fatalf("stored %+v, want %+v", stored, &want)
			}
		})
	}
}
