// Package challenges validates ACME challenges (RFC 8555 §8, RFC 8737,
// RFC 8738) against real sockets. A Validator only reads from the network
// and reports the outcome: recording it, and moving the challenge along, is
// the caller's business.
package challenges

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

// Config sets up a Validator. The zero value validates against the system
// resolver and the standard ports, within the default guards.
type Config struct {
	// Resolver overrides the resolver NewResolver(Nameservers...) would
	// give; tests set it.
	Resolver Resolver
	// Nameservers ("host:port") answer every lookup validation makes: TXT
	// for dns-01, A/AAAA for http-01 and tls-alpn-01. Empty: the system
	// resolver for addresses, /etc/resolv.conf's servers for TXT. See
	// NewResolver.
	Nameservers []string
	// Dialer makes every validation connection (http-01, its redirects,
	// tls-alpn-01), through the guard of Blocked- and AllowedNetworks.
	// nil → &net.Dialer{Timeout: 5s}
	Dialer   *net.Dialer
	HTTPPort int // port http-01 connects to; 0 → 80
	// HTTPSPort is the only port an https redirect of http-01 may go to;
	// 0 → 443.
	HTTPSPort   int
	TLSALPNPort int           // port tls-alpn-01 connects to; 0 → 443
	Timeout     time.Duration // whole validation; 0 → 10s
	// MaxRedirects 0 → 10, and a negative value follows none; MaxBody 0 →
	// 64 KiB (read at most this, then fail).
	MaxRedirects int
	MaxBody      int64
	// BlockedNetworks are never connected to, whether an address comes from
	// DNS, an IP identifier or a redirect, in addition to
	// DefaultBlockedNetworks(), which are always blocked.
	BlockedNetworks []netip.Prefix
	// AllowedNetworks open part of the blocked ones: the only way to let
	// validation reach an address of DefaultBlockedNetworks().
	AllowedNetworks []netip.Prefix
	// MaxConcurrent caps validations in progress across all Validate calls
	// of this Validator; the others wait for a slot. 0 → 64, negative → no
	// cap.
	MaxConcurrent int
	// MaxPerAccount caps one account's validations in progress; its others
	// wait without holding a slot (see gate). 0 → max(1, MaxConcurrent/8)
	// (no cap when MaxConcurrent is not capped either), negative → no cap.
	MaxPerAccount int
}

const (
	defaultDialTimeout   = 5 * time.Second
	defaultTimeout       = 10 * time.Second
	defaultMaxRedirects  = 10
	defaultMaxBody       = 64 << 10
	defaultMaxConcurrent = 64
)

// Validator checks challenges. It holds no per-validation state, so one
// Validator serves any number of concurrent validations.
type Validator struct {
	resolver     Resolver
	dialer       *net.Dialer // guarded: see guardedDialer
	guard        guard
	httpPort     int
	httpsPort    int // only an https redirect to this port is followed
	tlsALPNPort  int
	timeout      time.Duration
	maxRedirects int
	maxBody      int64
	gate         *gate // admits validations within MaxConcurrent and MaxPerAccount
	// queued, when set, is called as a validation starts waiting, for its
	// account's turn or for a slot: tests learn of it without sleeping.
	queued func()
}

// New returns a Validator with cfg's zero fields set to their defaults.
func New(cfg Config) *Validator {
	v := &Validator{
		resolver:     cfg.Resolver,
		dialer:       cfg.Dialer,
		httpPort:     cfg.HTTPPort,
		httpsPort:    cfg.HTTPSPort,
		guard:        newGuard(cfg.BlockedNetworks, cfg.AllowedNetworks),
		tlsALPNPort:  cfg.TLSALPNPort,
		timeout:      cfg.Timeout,
		maxRedirects: cfg.MaxRedirects,
		maxBody:      cfg.MaxBody,
	}
	if v.resolver == nil {
		v.resolver = NewResolver(cfg.Nameservers...)
	}
	if v.dialer == nil {
		v.dialer = &net.Dialer{Timeout: defaultDialTimeout}
	}
	v.dialer = guardedDialer(v.dialer, v.guard)
	if v.httpPort <= 0 {
		v.httpPort = 80
	}
	if v.httpsPort <= 0 {
		v.httpsPort = 443
	}
	if v.tlsALPNPort <= 0 {
		v.tlsALPNPort = 443
	}
	if v.timeout <= 0 {
		v.timeout = defaultTimeout
	}
	if v.maxRedirects == 0 {
		v.maxRedirects = defaultMaxRedirects
	}
	if v.maxBody <= 0 {
		v.maxBody = defaultMaxBody
	}
	total := cfg.MaxConcurrent
	if total == 0 {
		total = defaultMaxConcurrent
	}
	perAccount := cfg.MaxPerAccount
	if perAccount == 0 && total > 0 {
		perAccount = DefaultMaxPerAccount(total)
	}
	v.gate = newGate(total, perAccount)
	// Read at call time: tests set v.queued after New.
	v.gate.queued = func(string, bool) {
		if v.queued != nil {
			v.queued()
		}
	}
	return v
}

// method is one challenge type's validation of one identifier: what it
// checked, failure or not, and the problem when it failed.
type method func(ctx context.Context, id acme.Identifier, token, keyAuth string) ([]acme.ValidationRecord, *acme.Problem)

// check checks one challenge. It returns nil when the challenge is
// satisfied, otherwise a *acme.Problem naming id: acme.ErrConnection (cannot
// connect, timeout, refused, a blocked address, too many or forbidden
// redirects), acme.ErrTLS (a handshake failed, or tls-alpn-01 was not
// negotiated), acme.ErrDNS (a lookup failed or found nothing),
// acme.ErrIncorrectResponse (wrong status, body, size, TXT record or
// certificate), and acme.ErrMalformed or acme.ErrUnsupportedIdentifier for
// what is not handled.
//
// The one exception: when ctx ends before the validation could start (no
// slot became free) or is canceled (not timed out) before it could finish,
// the error wraps ctx.Err() and is not a problem. The validation did not
// happen, so the challenge must not be failed for it; the job should be
// retried instead.
func (v *Validator) check(ctx context.Context, accountID string, typ acme.ChallengeType, id acme.Identifier, token, keyAuthorization string) ([]acme.ValidationRecord, error) {
	validate, p := v.method(typ, id)
	if p != nil {
		return nil, p.For(id)
	}
	release, err := v.acquire(ctx, accountID)
	if err != nil {
		return nil, fmt.Errorf("challenges: %s validation of %s not started: %w", typ, id.Value, err)
	}
	defer release()

	vctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	records, p := validate(vctx, id, token, keyAuthorization)
	if p == nil {
		return records, nil
	}
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return nil, fmt.Errorf("challenges: %s validation of %s abandoned: %w", typ, id.Value, err)
	}
	return records, p.For(id)
}

// Validate checks one challenge for accountID and returns its outcome,
// with the records of what it checked (failed or not); an error means the
// validation was not performed (see check).
func (v *Validator) Validate(ctx context.Context, accountID string, typ acme.ChallengeType, id acme.Identifier, token, keyAuthorization string) (acme.Validation, error) {
	records, err := v.check(ctx, accountID, typ, id, token, keyAuthorization)
	var p *acme.Problem
	if err != nil && !errors.As(err, &p) {
		return acme.Validation{}, err
	}
	return acme.Validation{Records: records, Problem: p}, nil
}

// method picks the validation of typ for id's type.
func (v *Validator) method(typ acme.ChallengeType, id acme.Identifier) (method, *acme.Problem) {
	if id.Type != acme.IdentifierDNS && id.Type != acme.IdentifierIP {
		return nil, acme.UnsupportedIdentifier("%s validation of %s identifiers is not supported", typ, id.Type)
	}
	switch typ {
	case acme.ChallengeHTTP01:
		return v.validateHTTP01, nil
	case acme.ChallengeTLSALPN01:
		return v.validateTLSALPN01, nil
	case acme.ChallengeDNS01:
		if id.Type == acme.IdentifierIP {
			// RFC 8738 §7: an IP address has no zone of its own to hold
			// the record.
			return nil, acme.Malformed("dns-01 cannot validate an IP address")
		}
		return v.validateDNS01, nil
	default:
		return nil, acme.Malformed("challenge type %s is not supported", typ)
	}
}

// DefaultMaxPerAccount is the per-account cap for a validator running at
// most maxConcurrent validations: an eighth of them, at least one. Small
// enough that eight accounts flooding at once still leave room, large
// enough that an account's order of a few names validates in parallel.
func DefaultMaxPerAccount(maxConcurrent int) int {
	return max(1, maxConcurrent/8)
}

// acquire waits until accountID may run one more validation (see gate),
// or until ctx ends. The wait ends a full timeout before ctx's deadline: a
// validation that starts later would be cut short by the deadline and fail
// for our lack of capacity, not for anything the target did. Either way
// the error is "not performed", never a problem.
func (v *Validator) acquire(ctx context.Context, accountID string) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	wait := ctx
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		wait, cancel = context.WithDeadline(ctx, d.Add(-v.timeout))
		defer cancel()
	}
	release, err = v.gate.acquire(wait, accountID)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("no capacity with %s left before the deadline: %w", v.timeout, err)
	}
	return release, err
}

// validDNSName reports whether d is a name a query can be built from:
// letters, digits, hyphens and underscores in non-empty labels.
func validDNSName(d string) bool {
	if d == "" || len(d) > 253 || net.ParseIP(d) != nil {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isAlnum(c) && c != '-' && c != '_' {
				return false
			}
		}
	}
	return true
}
