// Package storage defines the persistence contract acmed's backends meet.
// Each role is a small interface; Store gathers them for wiring.
//
// Updates are compare-and-set: UpdateX loads the resource, calls fn on a
// copy, and writes the result only if nothing changed the resource in
// between; otherwise it reloads and calls fn again (so fn must be a pure
// function of its argument). If fn returns an error, nothing is written and
// UpdateX returns that error unchanged.
package storage

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

var (
	// ErrNotFound: no resource with that key.
	ErrNotFound = errors.New("storage: not found")
	// ErrConflict: a unique key (an account key, an ID) is already taken.
	ErrConflict = errors.New("storage: conflict")
	// ErrUnavailable wraps backend failures a retry may cure (a lost
	// connection); the API answers them with 503 and Retry-After.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Accounts keeps accounts, findable by ID and by key thumbprint.
type Accounts interface {
	// CreateAccount fails with ErrConflict when the key thumbprint is taken.
	CreateAccount(ctx context.Context, a *acme.Account) error
	Account(ctx context.Context, id string) (*acme.Account, error)
	AccountByKey(ctx context.Context, thumbprint string) (*acme.Account, error)
	// UpdateAccount moves the key index along when fn changes KeyThumbprint,
	// failing with ErrConflict when another account holds the new key.
	UpdateAccount(ctx context.Context, id string, fn func(*acme.Account) error) (*acme.Account, error)
}

// Orders keeps orders and each account's list of them.
type Orders interface {
	// CreateOrder stores an order with its new authorizations at once.
	CreateOrder(ctx context.Context, o *acme.Order, authzs []*acme.Authorization) error
	Order(ctx context.Context, id string) (*acme.Order, error)
	UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error) (*acme.Order, error)
	// AccountOrders lists an account's order IDs oldest first, at most
	// limit of them after cursor ("" for the start). next is "" at the end.
	// A cursor the backend did not hand out is ErrNotFound.
	AccountOrders(ctx context.Context, accountID, cursor string, limit int) (ids []string, next string, err error)
}

// Authorizations keeps authorizations with their challenges.
type Authorizations interface {
	Authorization(ctx context.Context, id string) (*acme.Authorization, error)
	// Authorizations returns them in the order of ids; any missing one is
	// ErrNotFound.
	Authorizations(ctx context.Context, ids []string) ([]*acme.Authorization, error)
	// UpdateAuthorization also records a result whose Status is valid as
	// the account's valid authorization for its identifier and wildcard flag.
	UpdateAuthorization(ctx context.Context, id string, fn func(*acme.Authorization) error) (*acme.Authorization, error)
	// ValidAuthorization returns the latest authorization recorded valid for
	// the account and identifier (its expiry is the caller's to check).
	ValidAuthorization(ctx context.Context, accountID string, id acme.Identifier, wildcard bool) (*acme.Authorization, error)
}

// Certificates keeps issued certificates by serial.
type Certificates interface {
	// PutCertificate fails with ErrConflict if the serial exists.
	PutCertificate(ctx context.Context, c *acme.Certificate) error
	Certificate(ctx context.Context, serial string) (*acme.Certificate, error)
	UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error) (*acme.Certificate, error)
}

// Nonces keeps anti-replay nonces until they are used or expire.
type Nonces interface {
	PutNonce(ctx context.Context, nonce string, expires time.Time) error
	// ConsumeNonce reports whether the nonce existed unexpired, removing it
	// atomically so it is accepted exactly once. A non-empty next is kept
	// as PutNonce would, in the same round trip: every request that spends
	// a nonce is answered with a fresh one.
	ConsumeNonce(ctx context.Context, nonce, next string, nextExpires time.Time) (bool, error)
	// ConsumeNonceForAccount is ConsumeNonce and Accounts.Account in one
	// round trip: the two reads of every request signed with an account's
	// kid. A missing account is ErrNotFound, whatever the nonce.
	ConsumeNonceForAccount(ctx context.Context, nonce, next string, nextExpires time.Time, accountID string) (bool, *acme.Account, error)
}

// ScopedID joins an account ID and a random part into the ID of an order or
// authorization. Backends may use Scope to keep an account's resources
// together (Redis: one hash tag, so one Cluster slot).
func ScopedID(accountID, random string) string { return accountID + "." + random }

// Scope returns the account part of a ScopedID, or "" for other IDs.
func Scope(id string) string {
	scope, _, ok := strings.Cut(id, ".")
	if !ok {
		return ""
	}
	return scope
}

// Job is a unit of deferred work: validating one challenge (AuthzID and
// ChallengeID set) or issuing an order's certificate (OrderID set).
type Job struct {
	AuthzID     string `json:",omitempty"`
	ChallengeID string `json:",omitempty"`
	OrderID     string `json:",omitempty"`
}

// Jobs is a durable work queue (DESIGN.md decision 4).
type Jobs interface {
	Enqueue(ctx context.Context, j Job) error
	// Consume calls handle for each job until ctx ends. A job is removed
	// once handle returns while ctx is still live; a job whose consumer died
	// or was stopped before that is handed out again (after a restart for
	// the embedded store), so handle must be safe to run twice.
	Consume(ctx context.Context, handle func(context.Context, Job)) error
}

// Store is everything a backend provides.
type Store interface {
	Accounts
	Orders
	Authorizations
	Certificates
	Nonces
	Jobs
	// Ping reports whether the backend can serve requests now.
	Ping(ctx context.Context) error
	Close() error
}
