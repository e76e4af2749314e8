package storagetest

import (
	"strings"
	"sync"
	"testing"

	"github.com/acmed/acmed/storage"
)

func caIdentity(c byte) storage.CAIdentity {
	return storage.CAIdentity{Root: strings.Repeat(string(c), 64), Intermediate: strings.Repeat(string(c+1), 64)}
}

// testCA: the first claim is recorded and every later one gets it back,
// whoever makes it; claims racing on an empty store agree on one winner.
func testCA(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("first claim wins", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		first, other := caIdentity('a'), caIdentity('c')
		for _, tc := range []struct {
			name  string
			claim storage.CAIdentity
		}{
			{"first", first},
			{"same again", first},
			{"another CA", other},
			{"same root, another intermediate", storage.CAIdentity{Root: first.Root, Intermediate: other.Intermediate}},
		} {
			got, err := s.ClaimCA(ctx, tc.claim)
			mustNot(t, "ClaimCA "+tc.name, err)
			mustEqual(t, "ClaimCA "+tc.name, got, first)
		}
	})
	t.Run("empty fingerprint", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		if _, err := s.ClaimCA(ctx, storage.CAIdentity{Root: caIdentity('a').Root}); err == nil {
			t.Fatal("ClaimCA with no intermediate fingerprint succeeded")
		}
		got, err := s.ClaimCA(ctx, caIdentity('c'))
		mustNot(t, "ClaimCA after the refused one", err)
		mustEqual(t, "ClaimCA after the refused one", got, caIdentity('c'))
	})
	t.Run("racing claims", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const n = 8
		got := make([]storage.CAIdentity, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { got[i], errs[i] = s.ClaimCA(ctx, caIdentity(byte('a'+2*i))) })
		}
		wg.Wait()
		for i := range n {
			mustNot(t, "ClaimCA", errs[i])
			mustEqual(t, "claim seen by claimant "+string(rune('0'+i)), got[i], got[0])
		}
		again, err := s.ClaimCA(ctx, caIdentity('x'))
		mustNot(t, "ClaimCA after the race", err)
		mustEqual(t, "claim after the race", again, got[0])
	})
}
