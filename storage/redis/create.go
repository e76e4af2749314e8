package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// entry is a key to write with its value and TTL in ms.
type entry struct {
	key   string
	value any
	ttl   int64
}

// listAdd puts an order on its account's list.
type listAdd struct {
	key, member           string
	score, trimBelow, ttl int64
}

// createPart is what createScript does within one slot.
type createPart struct {
	limits    []storage.LimitCheck // decided first, spent only if it writes
	limitsAt  time.Time
	creates   []entry // written only if all are absent
	extends   []string
	extendTTL int64
	list      *listAdd
	index     []entry // valid-authorization entries
}

// createPlan is a CreateOrder cut into parts by slot: one part unless a
// Cluster spreads the keys (unscoped IDs). order is the part that creates
// the order itself. apart is the rate limits a Cluster keeps in other
// slots than the order's, decided before it in a step of their own.
type createPlan struct {
	parts []*createPart
	order *createPart
	apart []storage.LimitCheck
}

func (s *Store) planCreate(o *acme.Order, authzList []*acme.Authorization, opts storage.Options) (*createPlan, error) {
	plan := &createPlan{}
	byTag := map[string]*createPart{}
	part := func(key string) *createPart {
		tag := ""
		if s.cluster {
			tag = hashTag(key)
		}
		p, ok := byTag[tag]
		if !ok {
			p = &createPart{}
			byTag[tag] = p
			plan.parts = append(plan.parts, p)
		}
		return p
	}

	ttl := s.ttlOrder(o)
	created := make(map[string]bool, len(authzList))
	for _, a := range authzList {
		raw, err := encode(authzs, a)
		if err != nil {
			return nil, err
		}
		key := authzKey(a.ID)
		aTTL := max(s.ttlAuthz(a), ttl)
		part(key).creates = append(part(key).creates, entry{key, raw, aTTL})
		created[a.ID] = true
		if a.Status == acme.StatusValid {
			idx := validAuthzKey(a.AccountID, a.Identifier, a.Wildcard)
			part(idx).index = append(part(idx).index, entry{idx, a.ID, aTTL})
		}
	}
	// Authorizations reused from earlier orders must last as long as this
	// one.
	for _, id := range o.AuthzIDs {
		if !created[id] {
			p := part(authzKey(id))
			p.extends, p.extendTTL = append(p.extends, authzKey(id)), ttl
		}
	}
	raw, err := encode(orders, o)
	if err != nil {
		return nil, err
	}
	key := orderKey(o.ID)
	plan.order = part(key)
	plan.order.creates = append(plan.order.creates, entry{key, raw, ttl})
	list := orderListKey(o.AccountID)
	part(list).list = &listAdd{
		key: list, member: o.ID,
		score: s.now().UnixMilli(), trimBelow: s.listTrimBelow(o), ttl: s.ttlList(o),
	}
	// The limits ride in the order's script where they share its slot:
	// always on a single server, and for the account's limits on a
	// Cluster (their keys carry the account's tag, as the order's do).
	plan.order.limitsAt = opts.CheckAt
	for _, c := range opts.Check {
		switch {
		case c.Limit.Off():
		case len(plan.parts) == 1 && s.oneSlot(key, limitKey(c)):
			plan.order.limits = append(plan.order.limits, c)
		default:
			plan.apart = append(plan.apart, c)
		}
	}
	return plan, nil
}

// run calls createScript; see there for the layout. It returns 0 if a key
// to create exists, and a *storage.LimitError if a limit refuses.
func (p *createPart) run(ctx context.Context, s *Store) (int64, error) {
	keys := make([]string, 0, len(p.limits)+len(p.creates)+len(p.extends)+1+len(p.index))
	args := []any{len(p.creates), len(p.extends), "0", p.extendTTL, len(p.limits)}
	for _, c := range p.limits {
		keys = append(keys, limitKey(c))
	}
	if len(p.limits) > 0 {
		args = limitArgs(args, p.limitsAt, p.limits)
	}
	for _, e := range p.creates {
		keys = append(keys, e.key)
		args = append(args, e.value, e.ttl)
	}
	keys = append(keys, p.extends...)
	if l := p.list; l != nil {
		args[2] = "1"
		keys = append(keys, l.key)
		args = append(args, l.member, l.score, l.trimBelow, l.ttl)
	}
	for _, e := range p.index {
		keys = append(keys, e.key)
		args = append(args, e.value, e.ttl)
	}
	v, err := s.evalDurably(ctx, createScript, keys, args...).Result()
	if err != nil {
		return 0, fail(ctx, "create order", err)
	}
	switch v := v.(type) {
	case int64:
		return v, nil
	case []any:
		if len(v) == 2 {
			i, _ := v[0].(int64)
			retry, _ := v[1].(int64)
			if i >= 1 && i <= int64(len(p.limits)) {
				return 0, &storage.LimitError{Name: p.limits[i-1].Name, RetryAfter: time.Duration(retry) * time.Microsecond}
			}
		}
	}
	return 0, fmt.Errorf("redis: create order: unexpected script result %v", v)
}

// createSpread creates an order whose keys a Cluster spreads over slots,
// which only IDs made without storage.ScopedID do. It first creates the
// authorizations, slot by slot, and the order last, undoing all on a
// conflict; then it lists the order and sets index entries. A reader who
// finds the order therefore finds its authorizations; a failure half way
// leaves at most keys that expire.
func (s *Store) createSpread(ctx context.Context, o *acme.Order, plan *createPlan) error {
	var done []entry
	undo := func() {
		ctx := context.WithoutCancel(ctx)
		for _, e := range done {
			_, _ = runCAS(ctx, s, delIfScript, "undo create order", []string{e.key}, e.value)
		}
	}
	steps := make([]*createPart, 0, len(plan.parts))
	for _, p := range plan.parts {
		if p != plan.order {
			steps = append(steps, p)
		}
	}
	for _, p := range append(steps, plan.order) {
		if len(p.creates) == 0 {
			continue
		}
		res, err := (&createPart{creates: p.creates}).run(ctx, s)
		if err != nil || res == 0 {
			undo()
			if err != nil {
				return err
			}
			return conflict("order or authorization of order", o.ID)
		}
		done = append(done, p.creates...)
	}
	for _, p := range plan.parts {
		rest := &createPart{extends: p.extends, extendTTL: p.extendTTL, list: p.list, index: p.index}
		if len(rest.extends) == 0 && rest.list == nil && len(rest.index) == 0 {
			continue
		}
		if _, err := rest.run(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
