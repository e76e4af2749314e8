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
	// connection, a compare-and-set that lost every retry); the API
	// answers them with 503 and Retry-After.
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

// AccountList lists accounts for operators (the admin API), never on the
// ACME hot path.
type AccountList interface {
	// ListAccounts returns account IDs in ascending order, at most limit
	// of them after cursor ("" for the start; else the last ID of the
	// previous page). next is "" at the end.
	ListAccounts(ctx context.Context, cursor string, limit int) (ids []string, next string, err error)
}

// Orders keeps orders and each account's list of them.
type Orders interface {
	// CreateOrder stores an order with its new authorizations at once. It
	// takes Limiting, whose refusal is a *LimitError.
	CreateOrder(ctx context.Context, o *acme.Order, authzs []*acme.Authorization, opts ...Option) error
	Order(ctx context.Context, id string) (*acme.Order, error)
	// UpdateOrder takes From, Queue, Finishing and WithCertificate.
	UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error, opts ...Option) (*acme.Order, error)
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
	// It takes From, Queue and Finishing.
	UpdateAuthorization(ctx context.Context, id string, fn func(*acme.Authorization) error, opts ...Option) (*acme.Authorization, error)
	// ValidAuthorization returns the latest authorization recorded valid for
	// the account and identifier (its expiry is the caller's to check).
	ValidAuthorization(ctx context.Context, accountID string, id acme.Identifier, wildcard bool) (*acme.Authorization, error)
}

// Certificates keeps issued certificates by serial.
type Certificates interface {
	// PutCertificate fails with ErrConflict if the serial exists.
	PutCertificate(ctx context.Context, c *acme.Certificate) error
	Certificate(ctx context.Context, serial string) (*acme.Certificate, error)
	// UpdateCertificate takes BlockingKey.
	UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error, opts ...Option) (*acme.Certificate, error)
}

// Nonces keeps what stateless nonces (acme/nonce) need shared between
// replicas: the MAC key of each epoch, and the nonces already spent.
// Handing a nonce out touches neither.
type Nonces interface {
	// NonceKey returns the MAC key of epoch. With a candidate it is
	// set-if-absent: the first candidate stored for the epoch is every
	// caller's key, kept until expires. Without one (nil) it only reads,
	// and a missing key is ErrNotFound.
	NonceKey(ctx context.Context, epoch uint32, candidate []byte, expires time.Time) ([]byte, error)
	// ConsumeNonce records nonce as spent until expires, set-if-absent:
	// of any number of callers, on any replicas, exactly one is told true.
	// An expires already past records nothing and is false.
	ConsumeNonce(ctx context.Context, nonce string, expires time.Time) (bool, error)
	// ConsumeNonceForAccount is ConsumeNonce (none for nonce "", whose
	// NonceOK is false), Accounts.Account and the reads look names in one
	// round trip: everything a request signed with an account's kid reads
	// before it acts. A missing account is ErrNotFound, whatever the
	// nonce; a looked-up resource that is missing is left nil in Found.
	ConsumeNonceForAccount(ctx context.Context, nonce string, expires time.Time, accountID string, look Lookup) (Found, error)
}

// Lookup names the resource a request is about; "" reads nothing.
type Lookup struct {
	OrderID string
	AuthzID string
	Serial  string
	// KeyHash is a key to look up among the blocked ones (BlockedKeys):
	// a finalize request's CSR key.
	KeyHash string
}

// Found is what ConsumeNonceForAccount read.
type Found struct {
	NonceOK     bool // the nonce was not spent before, and is now
	Account     *acme.Account
	Order       *acme.Order
	Authz       *acme.Authorization
	Certificate *acme.Certificate
	// BlockedKey is the record of Lookup.KeyHash if that key is blocked,
	// else nil.
	BlockedKey *BlockedKey
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

// Claim is a job held by whoever runs it. A job is born claimed by the
// update that queues it (Queue), so the replica that took the request runs
// it at once; it stays in the store until a write that finishes it
// (Finishing) or Jobs.Finish, and a claim its holder never finishes is
// handed to Jobs.Consume on some replica (DESIGN.md decision 4).
type Claim struct {
	Job Job
	ID  string // the backend's handle for this job
}

// Jobs is the durable side of the work queue.
type Jobs interface {
	// Finish ends a claimed job that needs no write: its result was
	// recorded by someone else, or there is nothing left to do.
	Finish(ctx context.Context, c Claim) error
	// Consume calls handle for each claimed job its holder stopped short
	// of finishing, until ctx ends: Redis hands over jobs left unfinished
	// longer than its reclaim time, the embedded store those left in the
	// file by an earlier run and those Released in this one. handle must finish the claim (or leave it to
	// be handed out again), and must be safe to run for a job whose result
	// another holder already recorded.
	Consume(ctx context.Context, handle func(context.Context, Claim)) error
	// Release gives back a claim whose work its holder could not do (a
	// validation not performed by the job's deadline), so that Consume
	// hands the job out again: on Redis once the claim has gone
	// unfinished for the reclaim time, as for a holder that died; on the
	// embedded store at once, as no other process would ever take it.
	Release(ctx context.Context, c Claim) error
}

// Option adds work to a compare-and-set update. Each is done in the same
// atomic step as the write where the backend can (a Redis Cluster takes
// what lives in another slot in further steps, only once the write stood).
type Option func(*Options)

// Options is what a backend reads from the Options of one update.
type Options struct {
	// From is the resource (*acme.Order or *acme.Authorization) as the
	// caller read or wrote it in this store: the first attempt starts from
	// it instead of reading (a nil one is no copy). Starting from a stale
	// copy costs a retry, never a lost update.
	From any
	// Queue is a job to queue, claimed by the caller, if the update writes;
	// Claimed receives the claim (left zero when nothing was written).
	Queue   *Job
	Claimed *Claim
	// Finish is a claim this update finishes; it is finished even when fn
	// changes nothing.
	Finish *Claim
	// Certificate is stored if the update writes (orders only); a serial
	// already taken fails the update with ErrConflict.
	Certificate *acme.Certificate
	// Spend is rate limit counts for what the write records (limits.go).
	Spend   []LimitCheck
	SpendAt time.Time
	// Check is rate limits a create decides before it writes (Limiting).
	Check   []LimitCheck
	CheckAt time.Time
	// BlockKey is blocked if the update writes (certificates only).
	BlockKey *BlockedKey
}

// From starts an update from cur instead of reading it.
func From[T acme.Order | acme.Authorization](cur *T) Option {
	return func(o *Options) { o.From = cur }
}

// Queue queues j, claimed by the caller, with the update's write.
func Queue(j Job, claimed *Claim) Option {
	return func(o *Options) { o.Queue, o.Claimed = &j, claimed }
}

// Finishing finishes c with the update.
func Finishing(c Claim) Option {
	return func(o *Options) { o.Finish = &c }
}

// WithCertificate stores c with an order's update.
func WithCertificate(c *acme.Certificate) Option {
	return func(o *Options) { o.Certificate = c }
}

// Apply gathers opts for a backend.
func Apply(opts []Option) Options {
	var o Options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// CAIdentity names the CA a store serves: the SHA-256 fingerprints of its
// root and intermediate certificates (DER), in lower-case hex.
type CAIdentity struct {
	Root         string `json:"root"`
	Intermediate string `json:"intermediate"`
}

// CAs records which CA a store serves, so replicas with another CA's files
// cannot join it and issue chains its clients do not trust (DESIGN.md
// decision 3).
type CAs interface {
	// ClaimCA records id as the store's CA if none is recorded yet, and
	// returns the one recorded: id itself the first time, the first
	// claimant's identity ever after. Both fields of id must be set.
	ClaimCA(ctx context.Context, id CAIdentity) (CAIdentity, error)
}

// Store is everything a backend provides.
type Store interface {
	Accounts
	AccountList
	Orders
	Authorizations
	Certificates
	Nonces
	Jobs
	CAs
	EABKeys
	BlockedKeys
	// Ping reports whether the backend can serve requests now.
	Ping(ctx context.Context) error
	Close() error
}
