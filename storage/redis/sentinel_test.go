package redis_test

import (
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// Through Sentinel the store finds the master, and after a failover the
// new one: calls fail with ErrUnavailable meanwhile, never hang, and what
// was written before is there after.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, a replica and three sentinels")
	}
	sn := redistest.StartSentinel(t)
	s := open(t, sn.URL, redis.Config{})
	ctx := t.Context()
	want := &acme.Account{ID: "acct1", Status: acme.StatusValid, KeyThumbprint: "k1"}
	if err := s.CreateAccount(ctx, want); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	// WAIT: the write must be on the replica before its master dies.
	if n, err := client(t, sn.Master.URL).Do(ctx, "WAIT", 1, waitTimeout.Milliseconds()).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}

	old := sn.MasterAddr(t)
	sn.Master.Kill(t)
	if _, err := s.Account(ctx, "acct1"); err != nil && !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Account during failover: %v, want it or ErrUnavailable", err)
	}
	sn.WaitFailover(t, old)
	var got *acme.Account
	eventually(t, "Account after failover", func() bool {
		var err error
		got, err = s.AccountByKey(ctx, "k1")
		if err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("AccountByKey after failover: %v", err)
		}
		return err == nil
	})
	if got.ID != want.ID {
		t.Fatalf("account after failover: %+v", got)
	}
	if _, err := s.ConsumeNonce(ctx, "n", time.Now().Add(time.Minute)); err != nil {
		t.Fatalf("ConsumeNonce on the new master: %v", err)
	}
}
