package acme

import (
	"fmt"
	"net/http"
	"time"
)

const errorNS = "urn:ietf:params:acme:error:"

// Problem is an RFC 7807 problem document with the ACME error types of
// RFC 8555 §6.7. It is the only error a client ever sees; build it with the
// constructors below so type and HTTP status always agree.
type Problem struct {
	Type        string      `json:"type"`
	Detail      string      `json:"detail,omitempty"`
	Status      int         `json:"status,omitempty"`
	Identifier  *Identifier `json:"identifier,omitempty"`
	Subproblems []*Problem  `json:"subproblems,omitempty"`
	// Algorithms lists what the server accepts, for badSignatureAlgorithm.
	Algorithms []string `json:"algorithms,omitempty"`
	// RetryAfter, when positive, is sent as the Retry-After header
	// (rateLimited): how long until the request would be allowed.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	if p.Detail == "" {
		return p.Type
	}
	return p.Type + ": " + p.Detail
}

// Is makes errors.Is match problems of the same type.
func (p *Problem) Is(target error) bool {
	t, ok := target.(*Problem)
	return ok && t.Type == p.Type
}

// For returns a copy of p that names the identifier it is about.
func (p *Problem) For(id Identifier) *Problem {
	c := *p
	c.Identifier = &id
	return &c
}

func newProblem(typ string, status int, format string, args []any) *Problem {
	detail := format
	if len(args) > 0 {
		detail = fmt.Sprintf(format, args...)
	}
	return &Problem{Type: errorNS + typ, Detail: detail, Status: status}
}

// Problem types, as sentinels for errors.Is.
var (
	ErrMalformed               = &Problem{Type: errorNS + "malformed"}
	ErrBadNonce                = &Problem{Type: errorNS + "badNonce"}
	ErrBadCSR                  = &Problem{Type: errorNS + "badCSR"}
	ErrBadPublicKey            = &Problem{Type: errorNS + "badPublicKey"}
	ErrBadRevocationReason     = &Problem{Type: errorNS + "badRevocationReason"}
	ErrBadSignatureAlgorithm   = &Problem{Type: errorNS + "badSignatureAlgorithm"}
	ErrAccountDoesNotExist     = &Problem{Type: errorNS + "accountDoesNotExist"}
	ErrAlreadyRevoked          = &Problem{Type: errorNS + "alreadyRevoked"}
	ErrConnection              = &Problem{Type: errorNS + "connection"}
	ErrDNS                     = &Problem{Type: errorNS + "dns"}
	ErrIncorrectResponse       = &Problem{Type: errorNS + "incorrectResponse"}
	ErrInvalidContact          = &Problem{Type: errorNS + "invalidContact"}
	ErrInvalidProfile          = &Problem{Type: errorNS + "invalidProfile"}
	ErrAlreadyReplaced         = &Problem{Type: errorNS + "alreadyReplaced"}
	ErrOrderNotReady           = &Problem{Type: errorNS + "orderNotReady"}
	ErrRejectedIdentifier      = &Problem{Type: errorNS + "rejectedIdentifier"}
	ErrServerInternal          = &Problem{Type: errorNS + "serverInternal"}
	ErrTLS                     = &Problem{Type: errorNS + "tls"}
	ErrUnauthorized            = &Problem{Type: errorNS + "unauthorized"}
	ErrUnsupportedContact      = &Problem{Type: errorNS + "unsupportedContact"}
	ErrUnsupportedIdentifier   = &Problem{Type: errorNS + "unsupportedIdentifier"}
	ErrExternalAccountRequired = &Problem{Type: errorNS + "externalAccountRequired"}
	ErrRateLimited             = &Problem{Type: errorNS + "rateLimited"}
	ErrCompound                = &Problem{Type: errorNS + "compound"}
)

func Malformed(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusBadRequest, format, args)
}

// NotFound, MethodNotAllowed, Conflict, UnsupportedMediaType and TooLarge are
// malformed problems with the HTTP status that says more.
func NotFound(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusNotFound, format, args)
}
func MethodNotAllowed(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusMethodNotAllowed, format, args)
}
func Conflict(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusConflict, format, args)
}
func UnsupportedMediaType(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusUnsupportedMediaType, format, args)
}
func TooLarge(format string, args ...any) *Problem {
	return newProblem("malformed", http.StatusRequestEntityTooLarge, format, args)
}

func BadNonce(format string, args ...any) *Problem {
	return newProblem("badNonce", http.StatusBadRequest, format, args)
}
func BadCSR(format string, args ...any) *Problem {
	return newProblem("badCSR", http.StatusBadRequest, format, args)
}
func BadPublicKey(format string, args ...any) *Problem {
	return newProblem("badPublicKey", http.StatusBadRequest, format, args)
}
func BadRevocationReason(format string, args ...any) *Problem {
	return newProblem("badRevocationReason", http.StatusBadRequest, format, args)
}

// BadSignatureAlgorithm lists the accepted algorithms, as §6.2 asks.
func BadSignatureAlgorithm(accepted []string, format string, args ...any) *Problem {
	p := newProblem("badSignatureAlgorithm", http.StatusBadRequest, format, args)
	p.Algorithms = accepted
	return p
}
func AccountDoesNotExist(format string, args ...any) *Problem {
	return newProblem("accountDoesNotExist", http.StatusBadRequest, format, args)
}
func AlreadyRevoked(format string, args ...any) *Problem {
	return newProblem("alreadyRevoked", http.StatusBadRequest, format, args)
}
func Connection(format string, args ...any) *Problem {
	return newProblem("connection", http.StatusBadRequest, format, args)
}
func DNS(format string, args ...any) *Problem {
	return newProblem("dns", http.StatusBadRequest, format, args)
}
func IncorrectResponse(format string, args ...any) *Problem {
	return newProblem("incorrectResponse", http.StatusForbidden, format, args)
}
func InvalidContact(format string, args ...any) *Problem {
	return newProblem("invalidContact", http.StatusBadRequest, format, args)
}
func OrderNotReady(format string, args ...any) *Problem {
	return newProblem("orderNotReady", http.StatusForbidden, format, args)
}
func RejectedIdentifier(format string, args ...any) *Problem {
	return newProblem("rejectedIdentifier", http.StatusBadRequest, format, args)
}
func ServerInternal(format string, args ...any) *Problem {
	return newProblem("serverInternal", http.StatusInternalServerError, format, args)
}

// Unavailable is serverInternal with 503: the client should retry later.
func Unavailable(format string, args ...any) *Problem {
	return newProblem("serverInternal", http.StatusServiceUnavailable, format, args)
}
func TLS(format string, args ...any) *Problem {
	return newProblem("tls", http.StatusBadRequest, format, args)
}
func Unauthorized(format string, args ...any) *Problem {
	return newProblem("unauthorized", http.StatusForbidden, format, args)
}
func UnsupportedContact(format string, args ...any) *Problem {
	return newProblem("unsupportedContact", http.StatusBadRequest, format, args)
}

// AlreadyReplaced is RFC 9773 §7.2's error for a replaces naming a
// certificate that was already replaced.
func AlreadyReplaced(format string, args ...any) *Problem {
	return newProblem("alreadyReplaced", http.StatusConflict, format, args)
}

// InvalidProfile is draft-ietf-acme-profiles' error for a profile the
// server does not offer or the account may not use.
func InvalidProfile(format string, args ...any) *Problem {
	return newProblem("invalidProfile", http.StatusBadRequest, format, args)
}
func UnsupportedIdentifier(format string, args ...any) *Problem {
	return newProblem("unsupportedIdentifier", http.StatusBadRequest, format, args)
}

// RateLimited is a request over a rate limit; retryAfter is when it would
// be allowed.
func RateLimited(retryAfter time.Duration, format string, args ...any) *Problem {
	p := newProblem("rateLimited", http.StatusTooManyRequests, format, args)
	p.RetryAfter = retryAfter
	return p
}

func ExternalAccountRequired(format string, args ...any) *Problem {
	return newProblem("externalAccountRequired", http.StatusUnauthorized, format, args)
}

// Compound wraps several per-identifier problems (RFC 8555 §6.7.1). The
// outer type is that of the subproblems when they all agree.
func Compound(subs []*Problem, format string, args ...any) *Problem {
	if len(subs) == 1 {
		return subs[0]
	}
	p := newProblem("compound", http.StatusBadRequest, format, args)
	p.Type = subs[0].Type
	p.Status = subs[0].Status
	for _, s := range subs[1:] {
		if s.Type != p.Type {
			p.Type, p.Status = errorNS+"compound", http.StatusBadRequest
			break
		}
	}
	p.Subproblems = subs
	return p
}
