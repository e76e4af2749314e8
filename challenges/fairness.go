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
	running  int       // global slots held
	waiting  []*waiter // FIFO for a global slot
	accounts map[string]*accountState
}

// accountState is one account's share: tokens held (by jobs running or
// waiting for a global slot) and the jobs waiting for a token.
type accountState struct {
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
	return &gate{total: total, perAccount: perAccount, accounts: make(map[string]*accountState)}
}

// acquire admits one job of account, or returns ctx's error if ctx ends
// first (nothing is then held). release must be called once when the
// validation is over.
func (g *gate) acquire(ctx context.Context, account string) (release func(), err error) {
	if err := g.acquireAccount(ctx, account); err != nil {
		return nil, err
	}
	if err := g.acquireSlot(ctx, account); err != nil {
		g.mu.Lock()
		g.releaseAccountLocked(account)
		g.mu.Unlock()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.releaseSlotLocked()
			g.releaseAccountLocked(account)
		})
	}, nil
}

// acquireAccount takes one of account's tokens, waiting in the account's
// queue if it has none free.
func (g *gate) acquireAccount(ctx context.Context, account string) error {
	g.mu.Lock()
	a := g.accounts[account]
	if a == nil {
		a = &accountState{}
		g.accounts[account] = a
	}
	if g.perAccount <= 0 || (a.held < g.perAccount && len(a.waiting) == 0) {
		a.held++
		g.mu.Unlock()
		return nil
	}
	w := &waiter{account: account, ready: make(chan struct{})}
	a.waiting = append(a.waiting, w)
	g.mu.Unlock()
	if g.queued != nil {
		g.queued(account, false)
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		// Handed a token as ctx ended: pass it on.
		g.releaseAccountLocked(account)
	} else {
		a.waiting = remove(a.waiting, w)
		g.forgetLocked(account, a)
	}
	return ctx.Err()
}

// acquireSlot takes a global slot, waiting in the global queue if none is
// free.
func (g *gate) acquireSlot(ctx context.Context, account string) error {
	g.mu.Lock()
	if g.total <= 0 || (g.running < g.total && len(g.waiting) == 0) {
		g.running++
		g.mu.Unlock()
		return nil
	}
	w := &waiter{account: account, ready: make(chan struct{})}
	g.waiting = append(g.waiting, w)
	g.mu.Unlock()
	if g.queued != nil {
		g.queued(account, true)
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		g.releaseSlotLocked()
	} else {
		g.waiting = remove(g.waiting, w)
	}
	return ctx.Err()
}

// releaseSlotLocked hands a global slot to the first waiter, or frees it.
func (g *gate) releaseSlotLocked() {
	if len(g.waiting) > 0 {
		w := g.waiting[0]
		g.waiting[0] = nil
		g.waiting = g.waiting[1:]
		w.granted = true
		close(w.ready)
		return
	}
	g.running--
}

// releaseAccountLocked hands one of account's tokens to its first waiter,
// or frees it, forgetting the account once it holds and awaits nothing.
func (g *gate) releaseAccountLocked(account string) {
	a := g.accounts[account]
	if len(a.waiting) > 0 {
		w := a.waiting[0]
		a.waiting[0] = nil
		a.waiting = a.waiting[1:]
		w.granted = true
		close(w.ready)
		return
	}
	a.held--
	g.forgetLocked(account, a)
}

func (g *gate) forgetLocked(account string, a *accountState) {
	if a.held == 0 && len(a.waiting) == 0 {
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
