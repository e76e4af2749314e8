package authority_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// TestValidationNotPerformedIsReclaimed: on Redis, a replica whose
// validator cannot perform a validation before the job's deadline leaves
// the challenge processing and its job pending; another replica's worker
// reclaims the job after its reclaim time and records the real outcome.
// No replica ever records the challenge invalid.
func TestValidationNotPerformedIsReclaimed(t *testing.T) {
	srv := redistest.Start(t)
	sig := newFakeSigner(t)
	busy, able := &fakeValidator{notPerformed: -1}, &fakeValidator{outcome: acme.Validation{Records: httpRecords}}
	replica := func(consumer string, v authority.Validator) *authority.Authority {
		t.Helper()
		store := openRedis(t, srv.URL, redis.Config{Consumer: consumer, ReclaimAfter: 200 * time.Millisecond})
		a, err := authority.New(authority.Config{Store: store, Validator: v, Signer: sig,
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
			JobTimeout: 100 * time.Millisecond, RetryBackoff: time.Millisecond, ValidationWait: -1})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, b := replica("a", busy), replica("b", able)
	ctx := t.Context()
	acct, _, err := a.NewAccount(ctx, newKey(t), authority.NewAccountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.NewOrder(ctx, acct, authority.NewOrderRequest{Identifiers: dnsIDs("a.example")})
	if err != nil {
		t.Fatal(err)
	}
	az := o.Authzs[0]
	if _, err := a.RespondChallenge(ctx, authority.CallerOf(acct), az.ID, az.Challenges[0].ID); err != nil {
		t.Fatal(err)
	}
	a.Drain() // a's job gave up at its deadline
	got, err := a.Authorization(ctx, authority.CallerOf(acct), az.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != acme.StatusPending || got.Challenges[0].Status != acme.StatusProcessing || busy.callCount() == 0 {
		t.Fatalf("after a validation not performed: authorization %s, challenge %s, %d tries", got.Status, got.Challenges[0].Status, busy.callCount())
	}

	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = b.Run(runCtx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(waitTimeout)
	for {
		got, err = b.Authorization(ctx, authority.CallerOf(acct), az.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != acme.StatusPending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("authorization still %s after %v", got.Status, waitTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got.Status != acme.StatusValid || len(got.Challenges[0].ValidationRecords) != len(httpRecords) {
		t.Fatalf("after the reclaim: authorization %s, %d records", got.Status, len(got.Challenges[0].ValidationRecords))
	}
}
