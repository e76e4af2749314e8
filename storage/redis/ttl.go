package redis

import (
	"time"

	"github.com/acmed/acmed/acme"
)

// How long each kind of key lives (DESIGN.md decision 5: nothing grows
// without bound). Accounts and their key index entries are kept for good;
// everything else expires.

// ttlOrder keeps a finished (valid) order for Retention past its expiry,
// so clients and operators can still look it up; any other order for
// OrderTTL, enough for a client to see it turn invalid or expired.
func (s *Store) ttlOrder(o *acme.Order) int64 {
	if o.Status == acme.StatusValid {
		return s.ttlUntil(o.Expires.Add(s.retention))
	}
	return s.ttlUntil(o.Expires.Add(s.orderTTL))
}

// ttlAuthz keeps an authorization for OrderTTL past its own expiry; the
// orders listing it lengthen that to their own TTL, since rendering an
// order reads its authorizations.
func (s *Store) ttlAuthz(a *acme.Authorization) int64 {
	return s.ttlUntil(a.Expires.Add(s.orderTTL))
}

func (s *Store) ttlCert(c *acme.Certificate) int64 {
	return s.ttlUntil(c.NotAfter.Add(s.retention))
}

// keep is the longest an order outlives its expiry.
func (s *Store) keep() time.Duration { return max(s.retention, s.orderTTL) }

// ttlList lets an account's order list live as long as the longest its
// newest order can.
func (s *Store) ttlList(o *acme.Order) int64 {
	return s.ttlUntil(o.Expires.Add(s.keep()))
}

// listTrimBelow is the score (creation time in ms) under which list entries
// are dropped when o is added: orders that old are gone if they lived as
// long as o may. Orders of one account share one configured lifetime, so
// this drops no live one; an entry left for an order already gone is
// skipped by AccountOrders.
func (s *Store) listTrimBelow(o *acme.Order) int64 {
	now := s.now()
	life := max(o.Expires.Sub(now), 0)
	return now.Add(-life - s.keep()).UnixMilli()
}
