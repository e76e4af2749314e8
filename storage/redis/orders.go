package redis

import (
	"context"
	"fmt"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var orders = resource[acme.Order]{
	name: "order",
	key:  orderKey,
	id:   func(o *acme.Order) string { return o.ID },
}

// CreateOrder stores o, its new authorizations, its place in the account's
// list and any index entries in one script when they share a slot, which
// they do for IDs made with storage.ScopedID, and decides and spends the
// rate limits of storage.Limiting in that script: an issuance's new-order
// costs no round trip for its limits. Limits a Cluster keeps in another
// slot (an unscoped check, such as a name set's) are decided first, in a
// step of their own. Otherwise (unscoped IDs on a Cluster) see
// createSpread. An ID already taken is storage.ErrConflict.
func (s *Store) CreateOrder(ctx context.Context, o *acme.Order, authzList []*acme.Authorization, opts ...storage.Option) error {
	options := storage.Apply(opts)
	plan, err := s.planCreate(o, authzList, options)
	if err != nil {
		return err
	}
	if len(plan.apart) > 0 {
		d, err := s.Limit(ctx, options.CheckAt, plan.apart)
		if err != nil {
			return err
		}
		if !d.Allowed {
			return &storage.LimitError{Name: d.Refused, RetryAfter: d.RetryAfter}
		}
	}
	if len(plan.parts) == 1 {
		res, err := plan.parts[0].run(ctx, s)
		if err != nil {
			return err
		}
		if res == 0 {
			return conflict("order or authorization of order", o.ID)
		}
		return nil
	}
	return s.createSpread(ctx, o, plan)
}

func (s *Store) Order(ctx context.Context, id string) (*acme.Order, error) {
	return get(ctx, s, orders, id)
}

// UpdateOrder also lengthens the TTL of the order's authorizations to its
// own, so a finished order kept for Retention can still be rendered. A
// certificate stored with it shares the script on a single server, with
// its inventory entry; on a Cluster it lives in another slot and is stored
// first (PutCertificate: record, then inventory), and removed again, from
// the inventory too, if the order is not written after all, so no order
// is ever valid without its certificate.
func (s *Store) UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error, opts ...storage.Option) (*acme.Order, error) {
	o := storage.Apply(opts)
	var cert []byte
	var certTTL int64
	if c := o.Certificate; c != nil {
		var err error
		if cert, err = encode(certs, c); err != nil {
			return nil, err
		}
		certTTL = s.ttlCert(c)
	}
	separate := cert != nil && !s.oneSlot(orderKey(id), certKey(o.Certificate.Serial))
	if separate {
		if err := s.PutCertificate(ctx, o.Certificate); err != nil {
			return nil, err
		}
	}
	wrote := false // by the last attempt: it decides the outcome
	out, err := update(ctx, s, orders, id, func(o *acme.Order) error {
		wrote = false
		return fn(o)
	}, o, func(_ context.Context, raw []byte, cur *acme.Order, next []byte) (plan, error) {
		wrote = true
		var p plan
		ttl := s.ttlOrder(cur)
		p.compare(orderKey(id), raw)
		if cert != nil && !separate {
			p.absent(certKey(o.Certificate.Serial))
		}
		p.set(orderKey(id), next, ttl)
		if cert != nil && !separate {
			p.set(certKey(o.Certificate.Serial), cert, certTTL)
			s.invOp(&p, o.Certificate, "add")
		}
		// Best effort on a Cluster, like any TTL: the order is written.
		for _, a := range cur.AuthzIDs {
			p.extend(authzKey(a), ttl)
		}
		return p, nil
	})
	if separate && (err != nil || !wrote) {
		ctx := context.WithoutCancel(ctx)
		c := o.Certificate
		if n, _ := runCAS(ctx, s, delIfScript, "undo certificate", []string{certKey(c.Serial)}, cert); n == 1 {
			_ = s.invDrop(ctx, c.AccountID, c.Profile, true, c.Serial)
		}
	}
	return out, err
}

// AccountOrders pages through the account's list, a sorted set scored by
// creation time in ms (bumped to stay unique), so a cursor is the score of
// the last order handed out. Entries whose order has expired are skipped
// and removed on the way.
func (s *Store) AccountOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("redis: account orders: limit %d is not positive", limit)
	}
	after := "-inf"
	if cursor != "" {
		if n, err := strconv.ParseInt(cursor, 10, 64); err != nil || n < 0 {
			return nil, "", fmt.Errorf("%w: order list cursor %q", storage.ErrNotFound, cursor)
		}
		after = "(" + cursor
	}
	list := orderListKey(accountID)
	var ids, scores []string
	for {
		// One more than a page, to tell whether a next page exists.
		want := int64(limit + 1 - len(ids))
		zs, err := s.rdb.ZRangeArgsWithScores(ctx, goredis.ZRangeArgs{
			Key: list, Start: after, Stop: "+inf", ByScore: true, Count: want,
		}).Result()
		if err != nil {
			return nil, "", fail(ctx, "account orders", err)
		}
		live, gone, err := s.liveOrders(ctx, zs)
		if err != nil {
			return nil, "", err
		}
		for _, z := range live {
			ids = append(ids, z.Member.(string))
			scores = append(scores, strconv.FormatInt(int64(z.Score), 10))
		}
		if len(gone) > 0 {
			_ = s.rdb.ZRem(ctx, list, gone...).Err() // tidying; the next trim would do it too
		}
		if len(ids) > limit {
			return ids[:limit], scores[limit-1], nil
		}
		if int64(len(zs)) < want {
			return ids, "", nil
		}
		after = "(" + strconv.FormatInt(int64(zs[len(zs)-1].Score), 10)
	}
}

// liveOrders splits list entries into those whose order still exists and
// the members of those gone, with one pipeline of EXISTS.
func (s *Store) liveOrders(ctx context.Context, zs []goredis.Z) (live []goredis.Z, gone []any, err error) {
	if len(zs) == 0 {
		return nil, nil, nil
	}
	cmds := make([]*goredis.IntCmd, len(zs))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, z := range zs {
			cmds[i] = p.Exists(ctx, orderKey(z.Member.(string)))
		}
		return nil
	})
	if err != nil {
		return nil, nil, fail(ctx, "account orders", err)
	}
	for i, z := range zs {
		if cmds[i].Val() == 1 {
			live = append(live, z)
		} else {
			gone = append(gone, z.Member)
		}
	}
	return live, gone, nil
}
