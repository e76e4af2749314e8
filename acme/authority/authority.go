// Package authority holds acmed's use cases: accounts, orders, challenge
// responses, finalization and revocation. It loads resources from the store,
// applies the acme state machine inside compare-and-set updates, and hands
// work to a Validator and a Signer. It knows nothing of HTTP.
package authority

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/nonce"
	"github.com/acmed/acmed/acme/policy"
	"github.com/acmed/acmed/acme/profile"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// Store is the persistence the authority needs.
type Store interface {
	storage.Accounts
	storage.AccountList
	storage.Orders
	storage.Authorizations
	storage.Certificates
	storage.Nonces
	storage.Jobs
	storage.EABKeys
	storage.BlockedKeys
}

// Validator checks one challenge over the network for the account
// (accountID: validators share their capacity fairly between accounts).
// Its outcome is what it checked and, if the check failed, the problem to
// show. An error means only that it did not perform the validation (no
// capacity before ctx ended, or ctx ended): the job is retried, and the
// challenge stays processing until a real outcome.
type Validator interface {
	Validate(ctx context.Context, accountID string, typ acme.ChallengeType, id acme.Identifier, token, keyAuthorization string) (acme.Validation, error)
}

// Signer issues certificates.
type Signer interface {
	Sign(ctx context.Context, req ca.Request) (*ca.Issued, error)
}

// Revoker is a CA of record other than acmed (Vault's PKI engine) that
// must hear of every revocation: Revoke forwards it there before acmed
// records it, so a client is never told "revoked" while that CA still
// vouches for the certificate. An error wrapping ca.ErrUnavailable is
// transient (the client gets 503 + Retry-After).
type Revoker interface {
	Revoke(ctx context.Context, serial string) error
}

// Config wires an Authority. Zero durations take the defaults below.
type Config struct {
	Store     Store
	Validator Validator
	Signer    Signer
	Now       func() time.Time // nil: time.Now
	Rand      io.Reader        // nil: crypto/rand
	Logger    *slog.Logger     // nil: slog.Default()

	CertValidity time.Duration // default 168h
	// Profiles are the certificate profiles offered; nil: the built-ins
	// (profile.Builtins) with CertValidity.
	Profiles           *profile.Set
	OrderLifetime      time.Duration // pending orders and authorizations; default 24h
	ValidAuthzLifetime time.Duration // default 30 days
	NonceLifetime      time.Duration // default 1h
	// NonceRotation is how long one nonce key is used to issue nonces;
	// default 1h. Every replica on a store must use the same.
	NonceRotation time.Duration
	// DisableAuthzReuse makes every order get new authorizations instead of
	// reusing the account's valid ones for the same identifiers.
	DisableAuthzReuse bool
	// IdentifierPolicy is the global allow/deny policy every new order
	// is checked against; the zero value allows every identifier.
	IdentifierPolicy policy.Policy
	// TermsOfService, when set, must be agreed to by new accounts.
	TermsOfService string
	// JobTimeout bounds one validation or issuance job; default 30s.
	JobTimeout time.Duration
	// RetryBackoff is the first wait before asking the validator again
	// after it did not perform a validation; it doubles on each try, up to
	// 16 times itself, within JobTimeout. Default 250ms.
	RetryBackoff time.Duration
	// ValidationWait is how long a challenge response waits for its
	// validation before answering "processing"; default 1s, negative: none.
	ValidationWait time.Duration
	// Limiter keeps the rate limits' state (the store, for replicas to
	// share it); nil limits nothing. Limits are what it enforces, zero
	// ones off: take DefaultLimits and change what you need.
	Limiter storage.Limiter
	Limits  Limits
	// FinalizeWait is how long a finalize request waits for its issuance
	// before answering "processing"; default 5s.
	FinalizeWait time.Duration
	// EAB is --eab; "" is EABOptional.
	EAB EABMode
	// IssuerKeyID is the subject key identifier of the CA certificate
	// that signs the leaves, which every ARI certID (RFC 9773 §4.1) names
	// as the authority key identifier; nil: the Signer's, which must then
	// tell (Intermediate). An issuer without one (a CA certificate made
	// elsewhere) turns ARI off: its leaves carry no key identifier to
	// name them by.
	IssuerKeyID []byte
	// Metrics receives what only the authority knows (issuances,
	// validation outcomes, running jobs); nil reports nothing.
	Metrics Metrics
	// OCSPServer is the OCSP responder URL certificates carry in their
	// authority information access (--ocsp); nil: none.
	OCSPServer []string
	// Audit receives every audit event as a record (audit.go), besides
	// its log line; nil: the log line only.
	Audit AuditSink
	// CRLDistributionPoints are the URLs of the issuer's CRL, put in
	// every certificate (RFC 5280 §4.2.1.13); nil: none.
	CRLDistributionPoints []string
	// Issuers is the CA's set of intermediates (rotation); nil: the one
	// of IssuerKeyID, which cannot rotate.
	Issuers Issuers
	// Revoker, when set, is told of every revocation first (Revoker);
	// nil: acmed is the CA of record.
	Revoker Revoker
}

// Authority implements the ACME use cases.
type Authority struct {
	cfg    Config
	log    *slog.Logger
	jobs   sync.WaitGroup // jobs run for requests (runJob)
	nonces *nonces
}

// New returns an Authority; it fails if a required dependency is missing.
func New(cfg Config) (*Authority, error) {
	if cfg.Store == nil || cfg.Validator == nil || cfg.Signer == nil {
		return nil, errors.New("authority: Store, Validator and Signer are required")
	}
	if cfg.IssuerKeyID == nil {
		is, ok := cfg.Signer.(interface{ Intermediate() *x509.Certificate })
		if !ok {
			return nil, errors.New("authority: IssuerKeyID is required when the Signer does not name its issuing certificate")
		}
		cfg.IssuerKeyID = is.Intermediate().SubjectKeyId
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if len(cfg.IssuerKeyID) == 0 {
		cfg.Logger.Warn("the issuing CA certificate has no subject key identifier: ACME renewal information (RFC 9773) is off")
	}
	setDefault(&cfg.CertValidity, 168*time.Hour)
	if cfg.Profiles == nil {
		set, err := profile.NewSet(cfg.CertValidity, nil, "")
		if err != nil {
			return nil, fmt.Errorf("authority: %w", err)
		}
		cfg.Profiles = set
	}
	setDefault(&cfg.OrderLifetime, 24*time.Hour)
	setDefault(&cfg.ValidAuthzLifetime, 30*24*time.Hour)
	setDefault(&cfg.NonceLifetime, time.Hour)
	setDefault(&cfg.NonceRotation, time.Hour)
	cfg.NonceRotation = max(cfg.NonceRotation, time.Millisecond) // epochs count milliseconds
	setDefault(&cfg.JobTimeout, 30*time.Second)
	setDefault(&cfg.FinalizeWait, 5*time.Second)
	setDefault(&cfg.RetryBackoff, 250*time.Millisecond)
	if cfg.EAB == "" {
		cfg.EAB = EABOptional
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.ValidationWait == 0 {
		cfg.ValidationWait = time.Second
	}
	policy := nonce.Policy{Lifetime: cfg.NonceLifetime, Rotation: cfg.NonceRotation, Skew: nonceSkew}
	nonces := newNonces(cfg.Store, policy, func() time.Time { return cfg.Now().UTC() }, cfg.Rand)
	return &Authority{cfg: cfg, log: cfg.Logger, nonces: nonces}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

// Run works the jobs other replicas (or an earlier run) left unfinished
// until ctx ends.
func (a *Authority) Run(ctx context.Context) error {
	return a.cfg.Store.Consume(ctx, a.work)
}

// Profiles is the directory's meta.profiles: each profile with its
// description.
func (a *Authority) Profiles() map[string]string { return a.cfg.Profiles.Directory() }

// Drain waits for the jobs started for requests, so that a shutdown
// records their results rather than leave them to be reclaimed. Call it
// once no request is being served.
func (a *Authority) Drain() { a.jobs.Wait() }

func (a *Authority) now() time.Time { return a.cfg.Now().UTC() }

// randomID returns n random bytes, base64url encoded. IDs are random so
// that one client cannot guess or enumerate another's resources.
func (a *Authority) randomID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(a.cfg.Rand, b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// notFound turns a store miss into the client's 404 and passes other errors.
func notFound(err error, what string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return acme.NotFound("%s not found", what)
	}
	return err
}

// vanished is for a record that a conflict just said exists but that is
// gone when read: it was deleted in between, and the request, tried again,
// will see a consistent store. So it is ErrUnavailable (503, retry), not a
// 404 for something the client never asked about.
func vanished(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
	return err
}
