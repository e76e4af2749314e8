package storage

import (
	"time"

	"github.com/acmed/acmed/acme"
)

// Defaults of Retention's fields.
const (
	DefaultRetention = 720 * time.Hour
	DefaultGrace     = time.Hour
)

// Retention is the one rule by which every backend deletes what has
// outlived its use (DESIGN.md decision 5: nothing grows without bound).
// Each XUntil method gives the time until which a resource is kept; from
// then on a read may find it gone. Redis turns the time into a key's TTL
// when the resource is written, the embedded store's sweep deletes what
// is past it, and the conformance suite checks both against it.
//
//	account        kept for good
//	order          valid: Expires + Finished; any other status: Expires + Grace
//	authorization  Expires + Grace, and never before any order that lists
//	               it, which is rendered with it
//	certificate    NotAfter + Finished, revoked or not
//
// Finished is --retention: a valid order and its certificate stay that
// long after they expire, for lookups, revocation and the account's
// order list. A pending, ready, processing or invalid order is kept
// Grace past its expiry: long enough for a client to see it turn invalid
// or expired, not long enough for unauthenticated clients to fill the
// store with orders they abandon.
type Retention struct {
	Finished time.Duration // 0 means DefaultRetention
	Grace    time.Duration // 0 means DefaultGrace
}

func (r Retention) finished() time.Duration {
	if r.Finished <= 0 {
		return DefaultRetention
	}
	return r.Finished
}

func (r Retention) grace() time.Duration {
	if r.Grace <= 0 {
		return DefaultGrace
	}
	return r.Grace
}

// OrderUntil is when o may be deleted.
func (r Retention) OrderUntil(o *acme.Order) time.Time {
	if o.Status == acme.StatusValid {
		return o.Expires.Add(r.finished())
	}
	return o.Expires.Add(r.grace())
}

// AuthorizationUntil is when a may be deleted, unless an order listing it
// is kept longer: a backend keeps it until the latest OrderUntil of those
// too. It does not depend on a's status, so an authorization deactivated
// after its order became valid is not lost before the order.
func (r Retention) AuthorizationUntil(a *acme.Authorization) time.Time {
	return a.Expires.Add(r.grace())
}

// CertificateUntil is when c may be deleted.
func (r Retention) CertificateUntil(c *acme.Certificate) time.Time {
	return c.NotAfter.Add(r.finished())
}

// Longest is the most any order outlives its expiry.
func (r Retention) Longest() time.Duration { return max(r.finished(), r.grace()) }
