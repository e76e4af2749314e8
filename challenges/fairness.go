package challenges

import (
	"context"
	"sync"
)

// gate admits validations: at most perAccount of one account's at once, and
// at most total of all accounts'. Admission takes two steps, the account's
// token first and a global slot second, so a job over its account's limit
// waits without holding a slot another account could use, and an account
// never has more than perAccount jobs in the global queue. Both queues are
// FIFO and a freed slot or token is handed straight to the first waiter
// (no barging), so with one account flooding the validator, another
// account's job is at the head of the global queue as soon as it asks and
// waits at most for one validation to end: at most one timeout.
//
// Per-account state exists only while an account has a job admitted or
// waiting, so the map is bounded by the jobs in hand, not by the accounts
// ever seen.
type gate struct {
	total      int // global slots; <= 0: no cap
	perAccount int // tokens per account; <= 0: no cap
	// queued, when set, is called (outside the lock) as a job starts
	// waiting: for its account's token (global false) or for a global slot
	// (global true). Tests learn of waiting through it without sleeping.
	queued func(account string, global bool)

	mu       sync.Mutex
	slots    fifo // global slots held, and the jobs waiting for one
	accounts map[string]*fifo
}

// fifo is a counting semaphore whose waiters are served in arrival order;
// the gate's mutex guards it. For an account it counts the tokens held (by
// jobs running or waiting for a global slot) and the jobs waiting for one.
type fifo struct {
	held    int
	waiting []*waiter
}

// waiter is one job waiting; granted is set, under gate.mu, when what it
// waits for is handed to it, and ready closed then.
type waiter struct {
	account string
	ready   chan struct{}
	granted bool
}

func newGate(total, perAccount int) *gate {
	return &gate{total: total, perAccount: perAccount, accounts: make(map[string]*fifo)}
}

// acquire admits one job of account, or returns ctx's error if ctx ends
// first (nothing is then held). release must be called once when the
// validation is over.
func (g *gate) acquire(ctx context.Context, account string) (release func(), err error) {
	g.mu.Lock()
	a := g.accounts[account]
	if a == nil {
		a = &fifo{}
		g.accounts[account] = a
	}
	if err := g.take(ctx, a, g.perAccount, account, false); err != nil {
		return nil, err
	}
	g.mu.Lock()
	if err := g.take(ctx, &g.slots, g.total, account, true); err != nil {
		g.mu.Lock()
		g.give(a, account)
		g.mu.Unlock()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.give(&g.slots, "")
			g.give(a, account)
		})
	}, nil
}

// take takes one unit of q, whose limit is limit (<= 0: no cap), waiting
// in q's queue if none is free or others wait before it. It is called
// with g.mu held and returns with it released.
func (g *gate) take(ctx context.Context, q *fifo, limit int, account string, global bool) error {
	if limit <= 0 || (q.held < limit && len(q.waiting) == 0) {
		q.held++
		g.mu.Unlock()
		return nil
	}
	w := &waiter{account: account, ready: make(chan struct{})}
	q.waiting = append(q.waiting, w)
	g.mu.Unlock()
	if g.queued != nil {
		g.queued(account, global)
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		g.give(q, account) // handed a unit as ctx ended: pass it on
	} else {
		q.waiting = remove(q.waiting, w)
		g.forget(q, account)
	}
	return ctx.Err()
}

// give hands a unit of q to its first waiter, or frees it; account names
// q when it is an account's, which is forgotten once it holds and awaits
// nothing. g.mu is held.
func (g *gate) give(q *fifo, account string) {
	if len(q.waiting) > 0 {
		w := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		w.granted = true
		close(w.ready)
		return
	}
	q.held--
	g.forget(q, account)
}

// forget drops an account's state once it holds and awaits nothing, so
// the map is bounded by the jobs in hand. g.mu is held.
func (g *gate) forget(q *fifo, account string) {
	if q != &g.slots && q.held == 0 && len(q.waiting) == 0 {
		delete(g.accounts, account)
	}
}

// remove deletes w from q, keeping the order of the others.
func remove(q []*waiter, w *waiter) []*waiter {
	for i, x := range q {
		if x == w {
			copy(q[i:], q[i+1:])
			q[len(q)-1] = nil
			return q[:len(q)-1]
		}
	}
	return q
}
