package embedded

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/record"
)

// legacyFixture opens a store holding an order, its authorization and a
// certificate as an earlier acmed stored them: JSON.
func legacyFixture(t *testing.T, now func() time.Time) (*Store, *acme.Order, *acme.Authorization, *acme.Certificate) {
	t.Helper()
	t0 := now()
	ident := acme.Identifier{Type: acme.IdentifierDNS, Value: "legacy.example"}
	az := &acme.Authorization{
		ID: "a1.z1", AccountID: "a1", Identifier: ident, Status: acme.StatusPending, Expires: t0.Add(time.Hour),
		Challenges: []acme.Challenge{{ID: "c1", Type: acme.ChallengeHTTP01, Token: "tok", Status: acme.StatusPending}},
	}
	o := &acme.Order{ID: "a1.o1", AccountID: "a1", Status: acme.StatusPending, Identifiers: []acme.Identifier{ident},
		AuthzIDs: []string{az.ID}, Expires: t0.Add(time.Hour), CreatedAt: t0}
	cert := &acme.Certificate{Serial: "abc", AccountID: "a1", OrderID: o.ID, ChainPEM: []byte("pem"), NotAfter: t0.Add(2 * time.Hour)}
	s := openTest(t, filepath.Join(t.TempDir(), "acmed.db"), Config{Now: now, Retention: time.Hour, SweepEvery: -1})
	ctx := t.Context()
	if err := s.CreateOrder(ctx, o, []*acme.Authorization{az}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutCertificate(ctx, cert); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range []struct {
			bucket, key string
			v           any
		}{{bucketOrders, o.ID, o}, {bucketAuthzs, az.ID, az}, {bucketCerts, cert.Serial, cert}} {
			raw, err := json.Marshal(r.v)
			if err != nil {
				return err
			}
			if err := tx.Bucket([]byte(r.bucket)).Put([]byte(r.key), raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, o, az, cert
}

func storedRaw(t *testing.T, s *Store, bucket, key string) []byte {
	t.Helper()
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		raw = append(raw, tx.Bucket([]byte(bucket)).Get([]byte(key))...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestLegacyJSONRecords: records an earlier acmed stored as JSON read as
// they were; an update that changes nothing leaves them JSON and queues
// nothing; one that changes them writes the binary form.
func TestLegacyJSONRecords(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
	for _, tc := range []struct {
		name       string
		fn         func(*acme.Authorization) error
		wantBinary bool // stored in the binary form after, and a job queued
	}{
		{"unchanged", func(*acme.Authorization) error { return nil }, false},
		{"changed", func(a *acme.Authorization) error {
			a.Challenges[0].Status = acme.StatusProcessing
			return nil
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, o, az, cert := legacyFixture(t, now)
			ctx := t.Context()
			gotO, err := s.Order(ctx, o.ID)
			if err != nil || !reflect.DeepEqual(gotO, o) {
				t.Fatalf("Order = %+v, %v; want %+v", gotO, err, o)
			}
			gotC, err := s.Certificate(ctx, cert.Serial)
			if err != nil || !reflect.DeepEqual(gotC, cert) {
				t.Fatalf("Certificate = %+v, %v; want %+v", gotC, err, cert)
			}
			var claim storage.Claim
			got, err := s.UpdateAuthorization(ctx, az.ID, tc.fn, storage.Queue(storage.Job{AuthzID: az.ID, ChallengeID: "c1"}, &claim))
			if err != nil {
				t.Fatalf("UpdateAuthorization: %v", err)
			}
			want := *az
			want.Challenges = append([]acme.Challenge(nil), az.Challenges...)
			_ = tc.fn(&want)
			if !reflect.DeepEqual(got, &want) {
				t.Fatalf("update returned %+v, want %+v", got, &want)
			}
			if queued := claim.ID != ""; queued != tc.wantBinary {
				t.Errorf("job queued: %v, want %v", queued, tc.wantBinary)
			}
			raw := storedRaw(t, s, bucketAuthzs, az.ID)
			if binary := !record.Legacy(raw); binary != tc.wantBinary {
				t.Errorf("stored %q: binary %v, want %v", raw, binary, tc.wantBinary)
			}
		})
	}
}

// TestSweepLegacyJSON: Sweep judges JSON records by the same times as
// binary ones.
func TestSweepLegacyJSON(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: t0}
	s, o, az, cert := legacyFixture(t, clock.Now)
	ctx := t.Context()
	for _, tc := range []struct {
		at                 time.Duration
		order, authz, cert bool // still there
	}{
		// Pending order and authorization: Expires (1h) + Grace (1h);
		// certificate: NotAfter (2h) + Retention (1h).
		{2*time.Hour - time.Minute, true, true, true},
		{2*time.Hour + time.Minute, false, false, true},
		{3*time.Hour - time.Minute, false, false, true},
		{3*time.Hour + time.Minute, false, false, false},
	} {
		clock.Advance(t0.Add(tc.at).Sub(clock.Now()))
		if _, err := s.Sweep(ctx); err != nil {
			t.Fatalf("Sweep at +%v: %v", tc.at, err)
		}
		for _, r := range []struct {
			what, bucket, key string
			want              bool
		}{
			{"order", bucketOrders, o.ID, tc.order},
			{"authorization", bucketAuthzs, az.ID, tc.authz},
			{"certificate", bucketCerts, cert.Serial, tc.cert},
		} {
			if got := storedRaw(t, s, r.bucket, r.key) != nil; got != r.want {
				t.Errorf("at +%v: %s there %v, want %v", tc.at, r.what, got, r.want)
			}
		}
	}
}
