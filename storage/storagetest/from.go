package storagetest

import (
	"context"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// testFrom: starting from a copy the caller holds never loses an update,
// however stale the copy, and leaves the copy as it was.
func testFrom[T acme.Order | acme.Authorization](t *testing.T, open func(*testing.T) storage.Store, u updatable[T]) {
	for _, tc := range []struct {
		name string
		// from returns the copy to start from and a twin of it that the
		// update cannot touch, changing the store as other requests may.
		from func(context.Context, storage.Store) (from, twin *T, err error)
	}{
		{"current read", func(ctx context.Context, s storage.Store) (*T, *T, error) {
			return readTwice(ctx, s, u)
		}},
		{"stale read", func(ctx context.Context, s storage.Store) (*T, *T, error) {
			from, twin, err := readTwice(ctx, s, u)
			if err != nil {
				return nil, nil, err
			}
			_, err = u.update(ctx, s, func(v *T) error { u.mark(v); return nil })
			return from, twin, err
		}},
		{"result of an update", func(ctx context.Context, s storage.Store) (*T, *T, error) {
			from, err := u.update(ctx, s, func(v *T) error { u.mark(v); return nil })
			if err != nil {
				return nil, nil, err
			}
			twin, err := u.get(ctx, s)
			return from, twin, err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, ctx := open(t), t.Context()
			seedUpdatable(t, ctx, s)
			from, twin, err := tc.from(ctx, s)
			mustNot(t, "preparing the copy", err)
			want, err := u.get(ctx, s)
			mustNot(t, "read", err)
			u.bump(want)

			got, err := u.update(ctx, s, func(v *T) error { u.bump(v); return nil }, storage.From(from))
			mustNot(t, "update", err)
			mustEqual(t, "update result", got, want)
			stored, err := u.get(ctx, s)
			mustNot(t, "read after", err)
			mustEqual(t, "stored", stored, want)
			mustEqual(t, "the copy started from", from, twin)
		})
	}
}

func readTwice[T acme.Order | acme.Authorization](ctx context.Context, s storage.Store, u updatable[T]) (*T, *T, error) {
	a, err := u.get(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	b, err := u.get(ctx, s)
	return a, b, err
}
