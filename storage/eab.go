package storage

import (
	"context"

	"github.com/acmed/acmed/acme"
)

// EABKeys keeps external account binding keys (RFC 8555 §7.3.4). They are
// operator records: read once per new account and once per order of a
// bound account, written by the admin API and when an account binds.
// Keys carry no TTL: an expired key still names the policy of the
// accounts bound to it.
type EABKeys interface {
	// CreateEABKey fails with ErrConflict when the kid is taken.
	CreateEABKey(ctx context.Context, k *acme.EABKey) error
	EABKey(ctx context.Context, kid string) (*acme.EABKey, error)
	// ListEABKeys returns every key, by kid.
	ListEABKeys(ctx context.Context) ([]*acme.EABKey, error)
	// UpdateEABKey is a compare-and-set update, as the package says.
	UpdateEABKey(ctx context.Context, kid string, fn func(*acme.EABKey) error) (*acme.EABKey, error)
}
