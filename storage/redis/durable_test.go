package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// followTimeout bounds how long the store may take to follow a change in
// the replica set: Sentinel's down-after-milliseconds (1s in redistest),
// the refreshes a count is held for, and room for a slow machine.
const followTimeout = 30 * time.Second

// writes are the store calls a client is told the outcome of, one of each
// kind: each must wait for the replicas.
func writes(s *redis.Store, n int) map[string]func(context.Context) error {
	acct := fmt.Sprintf("dur%d", n)
	order := storage.ScopedID(acct, "o")
	return map[string]func(context.Context) error{
		"CreateAccount": func(ctx context.Context) error {
			return s.CreateAccount(ctx, &acme.Account{ID: acct, Status: acme.StatusValid, KeyThumbprint: "k" + acct})
		},
		"CreateOrder": func(ctx context.Context) error {
			return s.CreateOrder(ctx, &acme.Order{ID: order, AccountID: acct, Status: acme.StatusPending, Expires: time.Now().Add(time.Hour)}, nil)
		},
		// A MULTI/EXEC pipeline: after a first claim, the same identity
		// is claimed again (and read back) by every call.
		"ClaimCA": func(ctx context.Context) error {
			_, err := s.ClaimCA(ctx, storage.CAIdentity{Root: "r", Intermediate: "i"})
			return err
		},
		"PutCertificate": func(ctx context.Context) error {
			return s.PutCertificate(ctx, &acme.Certificate{Serial: "s" + acct, AccountID: acct, NotAfter: time.Now().Add(time.Hour)})
		},
		// The estate's: a lease a failover dropped would let two replicas
		// alert, an alert queued or delivered and then dropped would be
		// lost or sent twice.
		"TryLease": func(ctx context.Context) error {
			_, err := s.TryLease(ctx, "lease"+acct, "holder", time.Minute)
			return err
		},
		"QueueAlert": func(ctx context.Context) error {
			_, err := s.QueueAlert(ctx, acme.Alert{Event: acme.AlertNotRenewed, Serial: "s" + acct, NotAfter: time.Now().Add(time.Hour)}, []string{"https://hook.example"})
			return err
		},
	}
}

// reads are store calls that show a client what is stored: a single
// command and a pipeline.
func reads(n int) map[string]func(context.Context, *redis.Store) error {
	acct := fmt.Sprintf("dur%d", n)
	return map[string]func(context.Context, *redis.Store) error{
		"Account": func(ctx context.Context, s *redis.Store) error {
			_, err := s.Account(ctx, acct)
			return err
		},
		"ConsumeNonceForAccount": func(ctx context.Context, s *redis.Store) error {
			_, err := s.ConsumeNonceForAccount(ctx, fmt.Sprintf("n%d", time.Now().UnixNano()), time.Now().Add(time.Minute), acct, storage.Lookup{OrderID: storage.ScopedID(acct, "o")})
			return err
		},
	}
}

// A write returns ErrUnavailable, never success, while a replica the
// sentinels still count does not confirm it; with NoReplicas it succeeds
// at once. Once the sentinels hold the replica down, the count follows
// and writes succeed again; when it is back, they wait for it again.
func TestWaitReplicaDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, two replicas and three sentinels")
	}
	sn := redistest.StartSentinel(t, redistest.WithReplicas(2))
	// A short WAIT: every call below must fail before the count, held
	// for five seconds, drops.
	auto := open(t, sn.URL, redis.Config{WaitTimeout: 200 * time.Millisecond})
	off := open(t, sn.URL, redis.Config{MinReplicas: redis.NoReplicas})
	ctx := t.Context()
	n := 0
	try := func(s *redis.Store) map[string]error {
		n++
		errs := map[string]error{}
		for name, w := range writes(s, n) {
			errs[name] = w(ctx)
		}
		return errs
	}
	for name, err := range try(auto) {
		if err != nil {
			t.Fatalf("%s with both replicas up: %v", name, err)
		}
	}

	sn.Replicas[1].Kill(t)
	for name, err := range try(auto) {
		if !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s with a replica down: %v, want ErrUnavailable", name, err)
		}
	}
	for name, err := range try(off) {
		if err != nil {
			t.Errorf("%s with a replica down and NoReplicas: %v", name, err)
		}
	}
	// Reads wait too: what a client is shown must survive a failover.
	for name, read := range reads(1) {
		if err := read(ctx, auto); !errors.Is(err, storage.ErrUnavailable) {
			t.Errorf("%s with a replica down: %v, want ErrUnavailable", name, err)
		}
		if err := read(ctx, off); err != nil {
			t.Errorf("%s with a replica down and NoReplicas: %v", name, err)
		}
	}
	pollUntil(t, "writes succeed once the sentinels hold the replica down", func() error {
		for name, err := range try(auto) {
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		return nil
	})

	// Back: the count rises, so writes wait for it again. Paused (its
	// connections stay up, so the sentinels see it down only after a
	// second) it must make a write fail, once the store has seen it back.
	sn.Replicas[1].Restart(t)
	pollUntil(t, "a write waits for the returned replica", func() error {
		sn.Replicas[1].Pause(t)
		defer sn.Replicas[1].Resume(t)
		err := auto.CreateAccount(ctx, &acme.Account{ID: fmt.Sprintf("back%d", time.Now().UnixNano())})
		if !errors.Is(err, storage.ErrUnavailable) {
			return fmt.Errorf("write with the replica paused: %v, want ErrUnavailable", err)
		}
		return nil
	})
}

// A fixed MinReplicas waits for exactly that many: one more than there are
// fails, as many as there are succeeds.
func TestWaitFixedCount(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, a replica and three sentinels")
	}
	sn := redistest.StartSentinel(t)
	for _, tc := range []struct {
		min     int
		wantErr bool
	}{{1, false}, {2, true}} {
		s := open(t, sn.URL, redis.Config{MinReplicas: tc.min, WaitTimeout: 100 * time.Millisecond})
		for name, w := range writes(s, 100+tc.min) {
			err := w(t.Context())
			if tc.wantErr != errors.Is(err, storage.ErrUnavailable) || (!tc.wantErr && err != nil) {
				t.Errorf("MinReplicas %d: %s: %v", tc.min, name, err)
			}
		}
	}
}

// Through a SENTINEL FAILOVER under concurrent writes, every write the
// store acknowledged is on the new master; the others failed with
// ErrUnavailable; and the store follows the new master by itself.
func TestWaitAcrossFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a master, two replicas and three sentinels")
	}
	sn := redistest.StartSentinel(t, redistest.WithReplicas(2))
	s := open(t, sn.URL, redis.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	var (
		mu        sync.Mutex
		acked     []string
		failed    int
		wg        sync.WaitGroup
		unhandled []error
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%d-%d", w, i)
				err := s.CreateAccount(context.WithoutCancel(ctx), &acme.Account{ID: id, KeyThumbprint: id})
				mu.Lock()
				switch {
				case err == nil:
					acked = append(acked, id)
				case errors.Is(err, storage.ErrUnavailable):
					failed++
				default:
					unhandled = append(unhandled, err)
				}
				mu.Unlock()
			}
		})
	}
	old := sn.MasterAddr(t)
	pollUntil(t, "writes before the failover", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < 200 {
			return fmt.Errorf("%d acknowledged", len(acked))
		}
		return nil
	})
	if list, err := client(t, "redis://"+old).ClientList(t.Context()).Result(); err != nil || !strings.Contains(list, " name=acmed ") {
		t.Fatalf("CLIENT LIST on the master shows no connection named acmed: %v\n%s", err, list)
	}
	sn.Failover(t)
	addr := sn.WaitFailover(t, old)
	mu.Lock()
	atSwitch := len(acked)
	mu.Unlock()
	pollUntil(t, "writes after the failover", func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(acked) < atSwitch+200 {
			return fmt.Errorf("%d acknowledged since the switch", len(acked)-atSwitch)
		}
		return nil
	})
	cancel()
	wg.Wait()
	for _, err := range unhandled {
		t.Errorf("write during failover: %v, want success or ErrUnavailable", err)
	}

	// The store left the old master: no connection of its own is open
	// there (the old master stays up, and becomes a replica).
	pollUntil(t, "the store's connections to the old master closed", func() error {
		list, err := client(t, "redis://"+old).ClientList(t.Context()).Result()
		if err != nil {
			return err
		}
		if n := strings.Count(list, " name=acmed "); n > 0 {
			return fmt.Errorf("%d connections named acmed on %s", n, old)
		}
		return nil
	})

	master := client(t, "redis://"+addr)
	missing := 0
	for _, id := range acked {
		n, err := master.Exists(t.Context(), "acmed:{a:"+id+"}:account", "acmed:acctkey:"+id).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			missing++
		}
	}
	t.Logf("%d writes acknowledged, %d failed with ErrUnavailable, %d acknowledged but missing on the new master %s", len(acked), failed, missing, addr)
	if missing > 0 {
		t.Fatalf("%d acknowledged writes lost in the failover", missing)
	}
}

// pollUntil polls cond until it returns nil, or fails after followTimeout
// with its last complaint.
func pollUntil(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(followTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, followTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// On a Cluster the write and its WAIT go to the master of the key's slot:
// with no replicas, auto waits for none, and a fixed count fails for want
// of replicas (not for a redirect: the node is the right one).
func TestWaitCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node Redis Cluster")
	}
	rc := redistest.StartCluster(t)
	auto := open(t, rc.URL, redis.Config{})
	fixed := open(t, rc.URL, redis.Config{MinReplicas: 1, WaitTimeout: 100 * time.Millisecond})
	for name, w := range writes(auto, 200) {
		if err := w(t.Context()); err != nil {
			t.Errorf("%s, auto, no replicas: %v", name, err)
		}
	}
	for name, w := range writes(fixed, 201) {
		if name == "ClaimCA" {
			continue // a MULTI, fenced like reads: not on a Cluster
		}
		err := w(t.Context())
		if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), "of 1 replicas") {
			t.Errorf("%s, 1 replica required, none there: %v, want ErrUnavailable for want of replicas", name, err)
		}
	}
}
