// Package challenges validates ACME challenges (RFC 8555 §8) against real
// sockets. A Validator only reads from the network and reports the outcome:
// recording it, and moving the challenge along, is the caller's business.
package challenges

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/acmed/acmed/acme"
)

// Config sets up a Validator. The zero value validates against the system
// resolver and the standard ports.
type Config struct {
	Resolver Resolver      // nil → system resolver
	Dialer   *net.Dialer   // nil → &net.Dialer{Timeout: 5s}
	HTTPPort int           // port http-01 connects to; 0 → 80
	Timeout  time.Duration // whole validation; 0 → 10s
	// MaxRedirects 0 → 10, and a negative value follows none; MaxBody 0 →
	// 64 KiB (read at most this, then fail).
	MaxRedirects int
	MaxBody      int64
}

const (
	defaultDialTimeout  = 5 * time.Second
	defaultTimeout      = 10 * time.Second
	defaultMaxRedirects = 10
	defaultMaxBody      = 64 << 10
)

// Validator checks challenges. It holds no per-validation state, so one
// Validator serves any number of concurrent validations.
type Validator struct {
	resolver     Resolver
	dialer       *net.Dialer
	httpPort     int
	httpsPort    int // only an https redirect to this port is followed; tests move it off 443
	timeout      time.Duration
	maxRedirects int
	maxBody      int64
}

// New returns a Validator with cfg's zero fields set to their defaults.
func New(cfg Config) *Validator {
	v := &Validator{
		resolver:     cfg.Resolver,
		dialer:       cfg.Dialer,
		httpPort:     cfg.HTTPPort,
		httpsPort:    443,
		timeout:      cfg.Timeout,
		maxRedirects: cfg.MaxRedirects,
		maxBody:      cfg.MaxBody,
	}
	if v.resolver == nil {
		v.resolver = NewResolver("")
	}
	if v.dialer == nil {
		v.dialer = &net.Dialer{Timeout: defaultDialTimeout}
	}
	if v.httpPort <= 0 {
		v.httpPort = 80
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
	return v
}

// Validate checks one challenge. It returns nil when the challenge is
// satisfied, otherwise a *acme.Problem naming id: acme.ErrConnection (cannot
// connect, timeout, refused, too many or forbidden redirects), acme.ErrTLS
// (an https redirect target failed the handshake), acme.ErrDNS (the name does
// not resolve), acme.ErrIncorrectResponse (wrong status, body or size), and
// acme.ErrMalformed or acme.ErrUnsupportedIdentifier for what is not handled.
//
// The one exception: when ctx itself is canceled (not timed out) before the
// validation could finish, the error wraps context.Canceled and is not a
// problem. The validation did not happen, so the challenge must not be failed
// for it; the job should be retried instead.
func (v *Validator) Validate(ctx context.Context, typ acme.ChallengeType, id acme.Identifier, token, keyAuthorization string) error {
	var validate func(context.Context, string, string, string) *acme.Problem
	switch typ {
	case acme.ChallengeHTTP01:
		if id.Type != acme.IdentifierDNS {
			return acme.UnsupportedIdentifier("%s validation of %s identifiers is not supported", typ, id.Type).For(id)
		}
		validate = v.validateHTTP01
	default:
		return acme.Malformed("challenge type %s is not supported", typ).For(id)
	}

	vctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	p := validate(vctx, id.Value, token, keyAuthorization)
	if p == nil {
		return nil
	}
	if err := ctx.Err(); errors.Is(err, context.Canceled) {
		return fmt.Errorf("challenges: %s validation of %s abandoned: %w", typ, id.Value, err)
	}
	return p.For(id)
}
