package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func blockedKey(hash, serial string) storage.BlockedKey {
	return storage.BlockedKey{Hash: hash, Serial: serial, At: createdAt()}
}

// testBlockedKeys: a blocked key is found by every read that asks for it,
// keeps its first record, and is blocked with a revocation only if the
// revocation writes.
func testBlockedKeys(t *testing.T, open func(*testing.T) storage.Store) {
	t.Run("block and look up", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		_, err := s.BlockedKey(ctx, "aa")
		mustBe(t, "BlockedKey before BlockKey", err, storage.ErrNotFound)
		first := blockedKey("aa", "01")
		mustNot(t, "BlockKey", s.BlockKey(ctx, first))
		mustNot(t, "BlockKey again, another certificate", s.BlockKey(ctx, blockedKey("aa", "02")))
		got, err := s.BlockedKey(ctx, "aa")
		mustNot(t, "BlockedKey", err)
		mustEqual(t, "blocked key (the first record stays)", *got, first)
		_, err = s.BlockedKey(ctx, "bb")
		mustBe(t, "BlockedKey of another key", err, storage.ErrNotFound)

		mustNot(t, "CreateAccount", s.CreateAccount(ctx, newAccount("bk-acct", "bk-thumb")))
		soon := time.Now().Add(time.Minute)
		for i, tc := range []struct {
			hash string
			want *storage.BlockedKey
		}{{"aa", &first}, {"bb", nil}, {"", nil}} {
			f, err := s.ConsumeNonceForAccount(ctx, fmt.Sprint("bk-nonce-", i), soon, "bk-acct", storage.Lookup{KeyHash: tc.hash})
			mustNot(t, "ConsumeNonceForAccount", err)
			mustEqual(t, fmt.Sprintf("Found.BlockedKey looking up %q", tc.hash), f.BlockedKey, tc.want)
			mustEqual(t, "Found.NonceOK", f.NonceOK, true)
		}
	})

	t.Run("with a revocation", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		mustNot(t, "PutCertificate", s.PutCertificate(ctx, newCertificate("0b", "acct-1", "order-1")))
		revokedAt := time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
		revoke := func(c *acme.Certificate) error {
			if c.Revoked {
				return errors.New("already revoked")
			}
			c.Revoked, c.RevokedAt, c.Reason = true, revokedAt, 1
			return nil
		}
		refuse := errors.New("refused")
		steps := []struct {
			name   string
			serial string
			fn     func(*acme.Certificate) error
			hash   string
			err    error // nil, storage.ErrNotFound or refuse
		}{
			{"fn refuses", "0b", func(*acme.Certificate) error { return refuse }, "k1", refuse},
			{"fn changes nothing", "0b", func(*acme.Certificate) error { return nil }, "k2", nil},
			{"no such certificate", "0c", revoke, "k3", storage.ErrNotFound},
			{"revocation", "0b", revoke, "k4", nil},
		}
		for _, st := range steps {
			_, err := s.UpdateCertificate(ctx, st.serial, st.fn, storage.BlockingKey(blockedKey(st.hash, st.serial)))
			if st.err == nil {
				mustNot(t, st.name, err)
			} else {
				mustBe(t, st.name, err, st.err)
			}
		}
		for _, hash := range []string{"k1", "k2", "k3"} {
			_, err := s.BlockedKey(ctx, hash)
			mustBe(t, "key of an update that wrote nothing", err, storage.ErrNotFound)
		}
		got, err := s.BlockedKey(ctx, "k4")
		mustNot(t, "key blocked with the revocation", err)
		mustEqual(t, "blocked key", *got, blockedKey("k4", "0b"))
		cert, err := s.Certificate(ctx, "0b")
		mustNot(t, "Certificate", err)
		mustEqual(t, "revoked", cert.Revoked && cert.Reason == 1 && cert.RevokedAt.Equal(revokedAt), true)

		// A key already blocked keeps its record when another
		// certificate's revocation blocks it again.
		mustNot(t, "PutCertificate", s.PutCertificate(ctx, newCertificate("0d", "acct-1", "order-2")))
		_, err = s.UpdateCertificate(ctx, "0d", revoke, storage.BlockingKey(blockedKey("k4", "0d")))
		mustNot(t, "second revocation with the same key", err)
		got, err = s.BlockedKey(ctx, "k4")
		mustNot(t, "BlockedKey", err)
		mustEqual(t, "blocked key after a second revocation", *got, blockedKey("k4", "0b"))
	})

	t.Run("racing", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		const racers = 10
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				if err := s.BlockKey(ctx, blockedKey("race", fmt.Sprintf("%02x", i))); err != nil {
					t.Errorf("BlockKey: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		got, err := s.BlockedKey(ctx, "race")
		mustNot(t, "BlockedKey", err)
		// Whichever won, every reader sees that one from now on.
		for range 3 {
			again, err := s.BlockedKey(ctx, "race")
			mustNot(t, "BlockedKey again", err)
			mustEqual(t, "blocked key", again, got)
		}
	})
}

// testBlockedKeysShared: another replica, or the next run, finds a key
// blocked before it.
func testBlockedKeysShared(t *testing.T, b Backend) {
	s := b.Open(t, time.Now, storage.Retention{})
	ctx := t.Context()
	mustNot(t, "PutCertificate", s.PutCertificate(ctx, newCertificate("0e", "acct-1", "order-1")))
	_, err := s.UpdateCertificate(ctx, "0e", func(c *acme.Certificate) error {
		c.Revoked, c.RevokedAt, c.Reason = true, createdAt(), 1
		return nil
	}, storage.BlockingKey(blockedKey("shared", "0e")))
	mustNot(t, "UpdateCertificate", err)
	r := b.Reopen(t, s)
	got, err := r.BlockedKey(ctx, "shared")
	mustNot(t, "BlockedKey on the other replica", err)
	mustEqual(t, "blocked key", *got, blockedKey("shared", "0e"))
}
