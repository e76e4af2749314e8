package redis

import (
	"time"

	"github.com/acmed/acmed/acme"
)

// How long each kind of key lives: until storage.Retention says, the one
// rule both backends share. Accounts and their key index entries are kept
// for good; everything else expires.

func (s *Store) ttlOrder(o *acme.Order) int64 {
	return s.ttlUntil(s.keep.OrderUntil(o))
}

// ttlAuthz is the authorization's own TTL; the orders listing it lengthen
// it to their own (luaExtend never lowers a TTL), which is the rest of the
// rule, since rendering an order reads its authorizations.
func (s *Store) ttlAuthz(a *acme.Authorization) int64 {
	return s.ttlUntil(s.keep.AuthorizationUntil(a))
}

func (s *Store) ttlCert(c *acme.Certificate) int64 {
	return s.ttlUntil(s.keep.CertificateUntil(c))
}

// longest is the longest an order outlives its expiry.
func (s *Store) longest() time.Duration { return s.keep.Longest() }

// ttlList lets an account's order list live as long as the longest its
// newest order can.
func (s *Store) ttlList(o *acme.Order) int64 {
	return s.ttlUntil(o.Expires.Add(s.longest()))
}

// listTrimBelow is the score (creation time in ms) under which list entries
// are dropped when o is added: orders that old are gone if they lived as
// long as o may. Orders of one account share one configured lifetime, so
// this drops no live one; an entry left for an order already gone is
// skipped by AccountOrders.
func (s *Store) listTrimBelow(o *acme.Order) int64 {
	now := s.now()
	life := max(o.Expires.Sub(now), 0)
	return now.Add(-life - s.longest()).UnixMilli()
}
