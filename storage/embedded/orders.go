package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

var orders = resource[acme.Order]{
	bucket: bucketOrders,
	name:   "order",
	key:    func(o *acme.Order) string { return o.ID },
}

// CreateOrder stores o, its new authorizations and its place in the
// account's list in one transaction, so no reader sees an order whose
// authorizations are missing. Any ID already taken is storage.ErrConflict.
//
// The limits of storage.Limiting are decided and spent in the limiter's
// critical section before the transaction (they live in memory, not in
// the file), and given back if the transaction fails: a refused order
// writes nothing, and an order not written counts nothing.
func (s *Store) CreateOrder(ctx context.Context, o *acme.Order, authzList []*acme.Authorization, opts ...storage.Option) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	options := storage.Apply(opts)
	now := options.CheckAt.UnixMicro()
	if len(options.Check) > 0 {
		if d := s.limits.limit(now, options.Check); !d.Allowed {
			return &storage.LimitError{Name: d.Refused, RetryAfter: d.RetryAfter}
		}
	}
	err := s.createOrder(o, authzList)
	if err != nil && len(options.Check) > 0 {
		back := make([]storage.LimitCheck, 0, len(options.Check))
		for _, c := range options.Check {
			if c.Cost > 0 {
				c.Cost = -c.Cost
				back = append(back, c)
			}
		}
		s.limits.spend(now, back)
	}
	return err
}

func (s *Store) createOrder(o *acme.Order, authzList []*acme.Authorization) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		err := insert(tx, orders, o, func(tx *bolt.Tx) error {
			list := tx.Bucket([]byte(bucketAccountOrders))
			seq, err := list.NextSequence()
			if err != nil {
				return err
			}
			return list.Put(binary.BigEndian.AppendUint64(accountPrefix(o.AccountID), seq), []byte(o.ID))
		})
		if err != nil {
			return err
		}
		for _, a := range authzList {
			if err := insert(tx, authzs, a, func(tx *bolt.Tx) error {
				return indexValid(tx, nil, a)
			}); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) Order(ctx context.Context, id string) (*acme.Order, error) {
	return get(ctx, s, orders, id)
}

func (s *Store) UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error, opts ...storage.Option) (*acme.Order, error) {
	return update(ctx, s, orders, id, fn, nil, storage.Apply(opts))
}

// AccountOrders pages through the account's orders in creation order. The
// cursor is the hex sequence number of the last order handed out; one that
// does not parse is storage.ErrNotFound, since it comes from a URL a client
// may have edited and is best answered as a page that does not exist.
func (s *Store) AccountOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("embedded store: account orders: limit %d is not positive", limit)
	}
	prefix := accountPrefix(accountID)
	start := prefix
	if cursor != "" {
		seq, err := hex.DecodeString(cursor)
		if err != nil || len(seq) != 8 {
			return nil, "", fmt.Errorf("%w: order list cursor %q", storage.ErrNotFound, cursor)
		}
		start = append(bytes.Clone(prefix), seq...)
	}
	var ids []string
	var next string
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte(bucketAccountOrders)).Cursor()
		var last []byte
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if cursor != "" && bytes.Equal(k, start) {
				continue
			}
			if len(ids) == limit {
				// Another order follows, so the page is not the last.
				next = hex.EncodeToString(last[len(prefix):])
				return nil
			}
			ids = append(ids, string(v))
			last = k
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return ids, next, nil
}

// accountPrefix ends in a zero byte, which account IDs never contain, so
// one account's prefix never matches another's keys.
func accountPrefix(accountID string) []byte {
	return append([]byte(accountID), 0)
}
