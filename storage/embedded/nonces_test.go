package embedded

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func openWithClock(t *testing.T) (*Store, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s, err := Open(filepath.Join(t.TempDir(), "acmed.db"), Config{Now: clock.Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, clock
}

// A spent nonce is recorded until its expiry and then forgotten; one
// already expired is refused and not recorded.
func TestNonceExpiry(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ttl       time.Duration
		advance   time.Duration
		wantFirst bool
		wantAgain bool
	}{
		{"spent again before expiry", time.Minute, 59 * time.Second, true, false},
		{"spent again at expiry", time.Minute, time.Minute, true, false},
		{"expired when spent", -time.Second, 0, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := openWithClock(t)
			ctx := t.Context()
			expires := clock.Now().Add(tc.ttl)
			ok, err := s.ConsumeNonce(ctx, "n", expires)
			if err != nil || ok != tc.wantFirst {
				t.Fatalf("first ConsumeNonce = %v, %v; want %v", ok, err, tc.wantFirst)
			}
			clock.Advance(tc.advance)
			// The authority never spends a nonce past its expiry; the
			// store refuses it anyway.
			ok, err = s.ConsumeNonce(ctx, "n", expires)
			if err != nil || ok != tc.wantAgain {
				t.Fatalf("second ConsumeNonce = %v, %v; want %v", ok, err, tc.wantAgain)
			}
		})
	}
}

// Spent nonces and old keys must not pile up.
func TestNoncePruning(t *testing.T) {
	s, clock := openWithClock(t)
	ctx := t.Context()
	for round := range 10 {
		for i := range 5000 {
			if _, err := s.ConsumeNonce(ctx, fmt.Sprintf("%d-%d", round, i), clock.Now().Add(time.Minute)); err != nil {
				t.Fatalf("ConsumeNonce: %v", err)
			}
		}
		for e := range 200 {
			if _, err := s.NonceKey(ctx, uint32(round*200+e), []byte("key"), clock.Now().Add(time.Minute)); err != nil {
				t.Fatalf("NonceKey: %v", err)
			}
		}
		clock.Advance(2 * time.Minute)
	}
	s.nonces.mu.Lock()
	spent, keys := len(s.nonces.spent.m), len(s.nonces.keys.m)
	s.nonces.mu.Unlock()
	// Live entries never exceed one round's; a sweep leaves at most twice
	// that, or its floor.
	if spent > 2*5000 {
		t.Errorf("%d spent nonces kept, want at most %d", spent, 2*5000)
	}
	if keys > minPruneAt {
		t.Errorf("%d nonce keys kept, want at most %d", keys, minPruneAt)
	}
}

// The key of an epoch outlives its expiry by nothing: after it, a new
// candidate is the key.
func TestNonceKeyExpiry(t *testing.T) {
	s, clock := openWithClock(t)
	ctx := t.Context()
	k1, err := s.NonceKey(ctx, 1, []byte("one"), clock.Now().Add(time.Hour))
	if err != nil || string(k1) != "one" {
		t.Fatalf("NonceKey = %q, %v", k1, err)
	}
	clock.Advance(time.Hour)
	if _, err := s.NonceKey(ctx, 1, nil, time.Time{}); err == nil {
		t.Fatal("expired key still read")
	}
	k2, err := s.NonceKey(ctx, 1, []byte("two"), clock.Now().Add(time.Hour))
	if err != nil || string(k2) != "two" {
		t.Fatalf("NonceKey after expiry = %q, %v", k2, err)
	}
}
