package authority_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

const waitTimeout = 10 * time.Second

// TestJobOfALostWriteIsReclaimedAndDoesNothing: on a Redis Cluster the job
// stream lies in another slot than the order, so a finalize queues the
// issuance first and then moves the order to processing. A replica that
// dies in between leaves a job and an order still ready: another replica
// reclaims the job, which finishes without issuing anything, and the
// order can be finalized again. No client read is needed for any of it.
func TestJobOfALostWriteIsReclaimedAndDoesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	cluster := redistest.StartCluster(t)
	sig := signer(t)
	dying := &dieBeforeWrite{}
	storeA := openRedis(t, cluster.URL, redis.Config{Consumer: "a", Hook: dying})
	storeB := &finishRecorder{Store: openRedis(t, cluster.URL, redis.Config{Consumer: "b", ReclaimAfter: 200 * time.Millisecond}),
		finished: make(chan storage.Claim, 10)}
	a := newAuthority(t, storeA, sig, nil)
	b := newAuthority(t, storeB, sig, nil)
	ctx := t.Context()

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	acct, _, err := a.NewAccount(ctx, &jose.JSONWebKey{Key: key.Public()}, authority.NewAccountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := a.NewOrder(ctx, acct, authority.NewOrderRequest{Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "lost.example"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storeA.UpdateAuthorization(ctx, o.AuthzIDs[0], func(az *acme.Authorization) error {
		az.Status, az.Challenges[0].Status = acme.StatusValid, acme.StatusValid
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"lost.example"}}, certKey)

	// Replica a queues the job, then "dies" before the order's write.
	dying.armed.Store(true)
	if _, err := a.Finalize(ctx, authority.CallerOf(acct), o.ID, csr); !errors.Is(err, errDied) {
		t.Fatalf("Finalize on the dying replica: %v, want %v", err, errDied)
	}
	if dying.armed.Load() {
		t.Fatal("the order's write was never attempted")
	}

	// Replica b's worker reclaims the job, which finishes doing nothing.
	go func() { _ = b.Run(ctx) }()
	select {
	case c := <-storeB.finished:
		if c.Job.OrderID != o.ID {
			t.Fatalf("b finished %+v, want the issuance of %s", c.Job, o.ID)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("no replica finished the lost write's job within %v", waitTimeout)
	}
	stored, err := storeB.Order(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Status != acme.StatusPending || stored.CertSerial != "" {
		t.Fatalf("order after the reclaimed job: status %s, certificate %q; want pending, none", stored.Status, stored.CertSerial)
	}

	// The client's retry works as on a fresh order.
	got, err := b.Finalize(ctx, authority.CallerOf(acct), o.ID, csr)
	if err != nil {
		t.Fatalf("Finalize after the reclaim: %v", err)
	}
	if got.Status != acme.StatusValid || got.CertSerial == "" {
		t.Fatalf("order after finalize: status %s, certificate %q", got.Status, got.CertSerial)
	}
}

var errDied = errors.New("replica died before the write")

// dieBeforeWrite, once armed, fails the next script that writes an order
// without sending it: what Redis sees of a replica that died just then.
type dieBeforeWrite struct{ armed atomic.Bool }

func (d *dieBeforeWrite) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (d *dieBeforeWrite) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}
func (d *dieBeforeWrite) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		args := cmd.Args()
		name := strings.ToLower(cmd.Name())
		if (name == "evalsha" || name == "eval") && len(args) > 3 {
			if k, ok := args[3].(string); ok && strings.Contains(k, ":order:") && d.armed.CompareAndSwap(true, false) {
				cmd.SetErr(errDied)
				return errDied
			}
		}
		return next(ctx, cmd)
	}
}

// finishRecorder reports every claim finished through it.
type finishRecorder struct {
	*redis.Store
	finished chan storage.Claim
}

func (f *finishRecorder) Finish(ctx context.Context, c storage.Claim) error {
	err := f.Store.Finish(ctx, c)
	f.finished <- c
	return err
}

func openRedis(t *testing.T, url string, cfg redis.Config) *redis.Store {
	t.Helper()
	s, err := redis.Open(t.Context(), url, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
