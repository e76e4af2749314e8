package nonce_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/nonce"
)

var (
	key      = nonce.NewKey(bytes.Repeat([]byte{7}, nonce.KeySize))
	otherKey = nonce.NewKey(bytes.Repeat([]byte{8}, nonce.KeySize))
	policy   = nonce.Policy{Lifetime: time.Hour, Rotation: time.Hour, Skew: time.Minute}
	issued   = time.Date(2026, 3, 1, 10, 30, 0, 123_000_000, time.UTC)
)

func sample() nonce.Nonce {
	n := nonce.Nonce{Epoch: policy.Epoch(issued), Issued: issued}
	for i := range n.Random {
		n.Random[i] = byte(i)
	}
	return n
}

func TestSealParseVerify(t *testing.T) {
	n := sample()
	s := nonce.Seal(key, n)
	if len(s) != nonce.Len {
		t.Fatalf("len(%q) = %d, want %d", s, len(s), nonce.Len)
	}
	if _, err := base64.RawURLEncoding.DecodeString(s); err != nil {
		t.Fatalf("not base64url: %v", err)
	}
	p, err := nonce.Parse(s)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if p.Nonce != n {
		t.Errorf("Parse = %+v, want %+v", p.Nonce, n)
	}
	if !p.Verify(key) {
		t.Error("tag does not verify under its key")
	}
	if p.Verify(otherKey) {
		t.Error("tag verifies under another key")
	}
	if s2 := nonce.Seal(key, nonce.Nonce{Epoch: n.Epoch, Issued: n.Issued}); s2 == s {
		t.Error("nonces with different random parts are equal")
	}
}

// flip changes one bit of the decoded nonce at byte i and re-encodes it.
func flip(t *testing.T, s string, i int) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	raw[i] ^= 1
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestTampered(t *testing.T) {
	s := nonce.Seal(key, sample())
	for i := range base64.RawURLEncoding.DecodedLen(len(s)) {
		p, err := nonce.Parse(flip(t, s, i))
		if i == 0 { // the version
			if !errors.Is(err, nonce.ErrMalformed) {
				t.Errorf("byte 0 flipped: Parse error %v, want ErrMalformed", err)
			}
			continue
		}
		if err == nil && p.Verify(key) {
			t.Errorf("byte %d flipped: still verifies", i)
		}
	}
}

func TestParseMalformed(t *testing.T) {
	good := nonce.Seal(key, sample())
	for _, tc := range []struct{ name, s string }{
		{"empty", ""},
		{"short", good[:len(good)-1]},
		{"long", good + "A"},
		{"not base64url", strings.Repeat("+", nonce.Len)},
		{"padding", good[:len(good)-2] + "=="},
		{"today's random nonce", "q1B0jGZkTd3ZSBp6t0uNvg"},
		{"unknown version", flip(t, good, 0)},
		{"issue time beyond any clock", func() string {
			raw, _ := base64.RawURLEncoding.DecodeString(good)
			copy(raw[5:13], bytes.Repeat([]byte{0xff}, 8))
			return base64.RawURLEncoding.EncodeToString(raw)
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := nonce.Parse(tc.s); !errors.Is(err, nonce.ErrMalformed) {
				t.Errorf("Parse(%q) error = %v, want ErrMalformed", tc.s, err)
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	n := sample()
	wrongEpoch := n
	wrongEpoch.Epoch++
	for _, tc := range []struct {
		name string
		n    nonce.Nonce
		now  time.Time
		want error
	}{
		{"just issued", n, issued, nil},
		{"within the lifetime", n, issued.Add(time.Hour - time.Millisecond), nil},
		{"at the end of the lifetime", n, issued.Add(time.Hour), nonce.ErrExpired},
		{"long expired", n, issued.Add(48 * time.Hour), nonce.ErrExpired},
		{"issued within the skew ahead", n, issued.Add(-time.Minute), nil},
		{"issued beyond the skew ahead", n, issued.Add(-time.Minute - time.Millisecond), nonce.ErrFuture},
		{"epoch not of its issue time", wrongEpoch, issued, nonce.ErrEpoch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := policy.Check(tc.n, tc.now); !errors.Is(err, tc.want) {
				t.Errorf("Check at %v = %v, want %v", tc.now, err, tc.want)
			}
		})
	}
}

func TestPolicyEpochs(t *testing.T) {
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	e := policy.Epoch(start)
	for _, tc := range []struct {
		name string
		t    time.Time
		want uint32
	}{
		{"epoch start", start, e},
		{"just before its end", start.Add(time.Hour - time.Millisecond), e},
		{"next epoch", start.Add(time.Hour), e + 1},
		{"before 1970", time.Unix(-10, 0), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.Epoch(tc.t); got != tc.want {
				t.Errorf("Epoch(%v) = %d, want %d", tc.t, got, tc.want)
			}
		})
	}
	// The key outlives the last nonce issued under it, on every clock.
	last := sample()
	last.Issued = start.Add(time.Hour - time.Millisecond)
	if exp := policy.KeyExpires(e); exp.Before(policy.SpentUntil(last)) {
		t.Errorf("key of epoch %d expires at %v, before its last nonce at %v", e, exp, policy.SpentUntil(last))
	}
	if got, want := policy.SpentUntil(last), last.Issued.Add(time.Hour+time.Minute); !got.Equal(want) {
		t.Errorf("SpentUntil = %v, want %v", got, want)
	}
}

func TestID(t *testing.T) {
	a, _ := nonce.Parse(nonce.Seal(key, sample()))
	n := sample()
	n.Random[0]++
	b, _ := nonce.Parse(nonce.Seal(key, n))
	if a.ID() == b.ID() || a.ID() == "" {
		t.Errorf("IDs %q and %q", a.ID(), b.ID())
	}
}

func FuzzParse(f *testing.F) {
	f.Add(nonce.Seal(key, sample()))
	f.Add("")
	f.Add(strings.Repeat("A", nonce.Len))
	f.Fuzz(func(t *testing.T, s string) {
		p, err := nonce.Parse(s)
		if err != nil {
			return
		}
		// Whatever parses re-seals to its own text under the right key.
		if p.Verify(key) && nonce.Seal(key, p.Nonce) != s {
			t.Errorf("verified %q re-seals differently", s)
		}
		_ = p.ID()
	})
}
