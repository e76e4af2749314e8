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

func TestNonceExpiry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ttl     time.Duration
		advance time.Duration
		want    bool
	}{
		{"before expiry", time.Minute, 59 * time.Second, true},
		{"at expiry", time.Minute, time.Minute, false},
		{"after expiry", time.Minute, 2 * time.Minute, false},
		{"expired when put", -time.Second, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, clock := openWithClock(t)
			ctx := t.Context()
			if err := s.PutNonce(ctx, "n", clock.Now().Add(tc.ttl)); err != nil {
				t.Fatalf("PutNonce: %v", err)
			}
			clock.Advance(tc.advance)
			ok, err := s.ConsumeNonce(ctx, "n", "", time.Time{})
			if err != nil || ok != tc.want {
				t.Fatalf("ConsumeNonce = %v, %v; want %v", ok, err, tc.want)
			}
		})
	}
}

// Nonces that clients fetch and never use must not pile up.
func TestNoncePruning(t *testing.T) {
	s, clock := openWithClock(t)
	ctx := t.Context()
	put := func(prefix string, n int) {
		t.Helper()
		for i := range n {
			if err := s.PutNonce(ctx, fmt.Sprintf("%s-%d", prefix, i), clock.Now().Add(time.Minute)); err != nil {
				t.Fatalf("PutNonce: %v", err)
			}
		}
	}
	for round := range 10 {
		put(fmt.Sprint(round), 5000)
		clock.Advance(2 * time.Minute)
	}
	s.nonces.mu.Lock()
	size := len(s.nonces.m)
	s.nonces.mu.Unlock()
	// Live nonces never exceed 5000; a sweep leaves at most twice that.
	if size > 2*5000 {
		t.Fatalf("%d nonces kept, want at most %d", size, 2*5000)
	}
}
