package authority_test

import (
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/nonce"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
	"github.com/acmed/acmed/storage/redis/redistest"
)

const (
	lifetime = time.Hour
	rotation = time.Hour
)

// clock is a test's clock, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	// Half an hour into an epoch, so a test chooses when to cross one.
	return &clock{t: time.Now().Truncate(rotation).Add(rotation / 2)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// signer is the built-in CA, made once per test: an Authority needs one,
// though nonces never sign.
func signer(t *testing.T) authority.Signer {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	s, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newAuthority(t *testing.T, store authority.Store, sig authority.Signer, now func() time.Time) *authority.Authority {
	t.Helper()
	a, err := authority.New(authority.Config{
		Store: store, Signer: sig, Validator: challenges.New(challenges.Config{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:    now, NonceLifetime: lifetime, NonceRotation: rotation,
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// replicas are authorities on one Redis, each with its own store client,
// on the clock c, with a client of their own to look into Redis.
func replicas(t *testing.T, n int, c *clock) ([]*authority.Authority, goredis.UniversalClient) {
	t.Helper()
	srv := redistest.Start(t)
	opts, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewUniversalClient(opts)
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.FlushDB(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	sig := signer(t)
	var out []*authority.Authority
	for range n {
		s, err := redis.Open(t.Context(), srv.URL, redis.Config{Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		out = append(out, newAuthority(t, s, sig, c.Now))
	}
	return out, rdb
}

func mustBadNonce(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, acme.ErrBadNonce) {
		t.Errorf("%s: %v, want badNonce", what, err)
	}
}

func mustNonce(t *testing.T, a *authority.Authority) string {
	t.Helper()
	n, err := a.NewNonce(t.Context())
	if err != nil {
		t.Fatalf("NewNonce: %v", err)
	}
	return n
}

func TestNonceAcrossReplicas(t *testing.T) {
	c := newClock()
	rs, _ := replicas(t, 2, c)
	a, b := rs[0], rs[1]
	ctx := t.Context()

	n := mustNonce(t, a)
	next, err := b.ConsumeNonce(ctx, n)
	if err != nil {
		t.Fatalf("replica B refuses replica A's nonce: %v", err)
	}
	if next == "" {
		t.Error("no fresh nonce with the answer")
	}
	for name, r := range map[string]*authority.Authority{"A": a, "B": b} {
		again, err := r.ConsumeNonce(ctx, n)
		mustBadNonce(t, "spent nonce on replica "+name, err)
		if again == "" {
			t.Error("badNonce without a fresh nonce")
		}
	}
	// The fresh nonce B handed out is good on A.
	if _, err := a.ConsumeNonce(ctx, next); err != nil {
		t.Errorf("replica A refuses replica B's nonce: %v", err)
	}
}

// Of many requests racing on two replicas with one nonce, exactly one is
// accepted.
func TestNonceRace(t *testing.T) {
	c := newClock()
	rs, _ := replicas(t, 2, c)
	ctx := t.Context()
	for round := range 20 {
		n := mustNonce(t, rs[round%2])
		const racers = 16
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				_, err := rs[i%2].ConsumeNonce(ctx, n)
				switch {
				case err == nil:
					mu.Lock()
					accepted++
					mu.Unlock()
				case !errors.Is(err, acme.ErrBadNonce):
					t.Errorf("ConsumeNonce: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if accepted != 1 {
			t.Fatalf("round %d: %d requests accepted one nonce, want 1", round, accepted)
		}
	}
}

// keyOf reads an epoch's key out of Redis, as an attacker with a stolen
// key of another epoch would hold it.
func keyOf(t *testing.T, rdb goredis.UniversalClient, epoch uint32) *nonce.Key {
	t.Helper()
	secret, err := rdb.Get(t.Context(), "acmed:noncekey:"+itoa(epoch)).Bytes()
	if err != nil {
		t.Fatalf("key of epoch %d: %v", epoch, err)
	}
	return nonce.NewKey(secret)
}

func itoa(e uint32) string { return strconv.FormatUint(uint64(e), 10) }

func parse(t *testing.T, s string) nonce.Sealed {
	t.Helper()
	p, err := nonce.Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return p
}

// Bad nonces are badNonce, on the plain and the account path, and leave
// nothing in the store: not a spent record, not a key.
func TestBadNonces(t *testing.T) {
	c := newClock()
	rs, rdb := replicas(t, 1, c)
	a := rs[0]
	ctx := t.Context()
	policy := nonce.Policy{Lifetime: lifetime, Rotation: rotation}

	// Epoch E-1's key, then E's: a nonce MACed with the one but naming
	// the other is forged with a genuine key.
	c.Advance(-rotation)
	mustNonce(t, a)
	c.Advance(rotation)
	good := mustNonce(t, a)
	p := parse(t, good)
	e := p.Epoch
	prevKey := keyOf(t, rdb, e-1)

	tamper := func(i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(good)
		raw[i] ^= 0x10
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	future := p.Nonce // beyond the skew of a minute
	future.Issued = c.Now().Add(2 * time.Minute)

	// An expired one: issued a lifetime and a bit ago, under E-1's key.
	expired := p.Nonce
	expired.Issued = c.Now().Add(-lifetime - time.Millisecond)
	expired.Epoch = policy.Epoch(expired.Issued)

	otherEpoch := p.Nonce // E's nonce, MACed with E-1's key
	const notOurs = "not issued by this server"
	for _, tc := range []struct{ name, nonce, detail string }{
		{"empty", "", "JWS has no nonce"},
		{"not base64url", "!!!!", "not a nonce of this server"},
		{"random bytes of the right length", base64.RawURLEncoding.EncodeToString(make([]byte, 45)), "not a nonce of this server"},
		{"a random nonce of earlier acmed", "q1B0jGZkTd3ZSBp6t0uNvg", "not a nonce of this server"},
		{"tampered issue time", tamper(10), ""},
		{"tampered random part", tamper(20), notOurs},
		{"tampered tag", tamper(40), notOurs},
		{"another epoch's key", nonce.Seal(prevKey, otherEpoch), notOurs},
		{"expired", nonce.Seal(prevKey, expired), "expired"},
		{"issued in the future", nonce.Seal(keyOf(t, rdb, e), future), notOurs},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBad(t, a, rdb, tc.nonce, tc.detail) })
	}

	// Within the skew of the next epoch, which has no key yet: a forged
	// nonce of that epoch reads the store, and writes nothing.
	c.Advance(rotation/2 - 30*time.Second)
	noKey := p.Nonce
	noKey.Issued = c.Now().Add(30*time.Second + time.Millisecond)
	noKey.Epoch = policy.Epoch(noKey.Issued)
	if noKey.Epoch != e+1 {
		t.Fatalf("epoch %d, want %d", noKey.Epoch, e+1)
	}
	checkBad(t, a, rdb, nonce.Seal(prevKey, noKey), notOurs)

	if _, err := a.ConsumeNonce(ctx, good); err != nil {
		t.Errorf("the genuine nonce, after all that: %v", err)
	}
}

// checkBad asserts that n is badNonce with a detail that says detail,
// with a fresh nonce, on both paths, and that checking it wrote nothing.
func checkBad(t *testing.T, a *authority.Authority, rdb goredis.UniversalClient, n, detail string) {
	t.Helper()
	ctx := t.Context()
	before := rdb.DBSize(ctx).Val()
	next, err := a.ConsumeNonce(ctx, n)
	mustBadNonce(t, "ConsumeNonce", err)
	if err != nil && !strings.Contains(err.Error(), detail) {
		t.Errorf("problem %q does not say %q", err, detail)
	}
	if next == "" {
		t.Error("badNonce without a fresh nonce")
	}
	_, _, err = a.ConsumeNonceForAccount(ctx, n, "no-such-account", authority.Lookup{})
	if !errors.Is(err, acme.ErrAccountDoesNotExist) {
		t.Errorf("ConsumeNonceForAccount of a missing account: %v", err)
	}
	if after := rdb.DBSize(ctx).Val(); after != before {
		t.Errorf("a bad nonce changed the store: %d keys, then %d", before, after)
	}
}

// Keys rotate with the epoch: a nonce is good for its lifetime across the
// boundary, on a replica that never saw its epoch before too, and the
// next epoch's nonces are under a new key.
func TestNonceKeyRotation(t *testing.T) {
	c := newClock()
	rs, rdb := replicas(t, 2, c)
	a, b := rs[0], rs[1]
	ctx := t.Context()

	c.Advance(rotation/2 - time.Second) // a second before the boundary
	old1, old2, old3 := mustNonce(t, a), mustNonce(t, a), mustNonce(t, a)
	e := parse(t, old1).Epoch
	c.Advance(2 * time.Second)
	fresh := mustNonce(t, a)
	if got := parse(t, fresh).Epoch; got != e+1 {
		t.Fatalf("nonce after the boundary has epoch %d, want %d", got, e+1)
	}
	k0, _ := rdb.Get(ctx, "acmed:noncekey:"+itoa(e)).Bytes()
	k1, _ := rdb.Get(ctx, "acmed:noncekey:"+itoa(e+1)).Bytes()
	if len(k0) != nonce.KeySize || len(k1) != nonce.KeySize || string(k0) == string(k1) {
		t.Fatalf("keys of epochs %d and %d: %x and %x, want two different keys", e, e+1, k0, k1)
	}
	// B has no key yet: it reads both from the store.
	if _, err := b.ConsumeNonce(ctx, old1); err != nil {
		t.Errorf("last epoch's nonce on B: %v", err)
	}
	if _, err := b.ConsumeNonce(ctx, fresh); err != nil {
		t.Errorf("this epoch's nonce on B: %v", err)
	}
	// The old key's TTL covers its nonces' lifetime, skew included.
	ttl := rdb.PTTL(ctx, "acmed:noncekey:"+itoa(e)).Val()
	if ttl < lifetime {
		t.Errorf("key of epoch %d kept %v more, want at least its nonces' lifetime %v", e, ttl, lifetime)
	}

	c.Advance(lifetime - 3*time.Second) // old2 has a second to live
	if _, err := a.ConsumeNonce(ctx, old2); err != nil {
		t.Errorf("last epoch's nonce a second before it expires: %v", err)
	}
	c.Advance(time.Second)
	_, err := b.ConsumeNonce(ctx, old3)
	mustBadNonce(t, "last epoch's nonce, expired", err)
}

// The embedded store's keys live in the process: a nonce of another
// process on the same file is badNonce, as one from before a restart.
func TestNonceEmbeddedRestart(t *testing.T) {
	c := newClock()
	path := filepath.Join(t.TempDir(), "acmed.db")
	sig := signer(t)
	open := func() *embedded.Store {
		s, err := embedded.Open(path, embedded.Config{Now: c.Now})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	a := newAuthority(t, s, sig, c.Now)
	n1, n2 := mustNonce(t, a), mustNonce(t, a)
	if _, err := a.ConsumeNonce(t.Context(), n1); err != nil {
		t.Fatalf("ConsumeNonce: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open()
	t.Cleanup(func() { _ = s.Close() })
	a = newAuthority(t, s, sig, c.Now)
	for name, n := range map[string]string{"spent": n1, "unspent": n2} {
		_, err := a.ConsumeNonce(t.Context(), n)
		mustBadNonce(t, name+" nonce from before a restart", err)
	}
	if _, err := a.ConsumeNonce(t.Context(), mustNonce(t, a)); err != nil {
		t.Errorf("a nonce after the restart: %v", err)
	}
}
