package authority

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/nonce"
	"github.com/acmed/acmed/storage"
)

// nonceSkew is how far the replicas' clocks may disagree: a nonce issued
// that far ahead of this replica's clock is accepted, and a spent one is
// recorded that much longer than its lifetime, so no replica accepts it
// again.
const nonceSkew = time.Minute

// nonces issues and checks stateless nonces (acme/nonce). Each epoch's
// MAC key is read from the store once per process and kept here, so that
// issuing a nonce, and checking one, costs no store access but that first
// read; only spending one writes.
type nonces struct {
	store  storage.Nonces
	policy nonce.Policy
	now    func() time.Time
	rand   io.Reader

	mu   sync.Mutex
	keys map[uint32]*nonce.Key // epoch → key
}

func newNonces(store storage.Nonces, p nonce.Policy, now func() time.Time, rand io.Reader) *nonces {
	return &nonces{store: store, policy: p, now: now, rand: rand, keys: make(map[uint32]*nonce.Key)}
}

// issue returns a fresh nonce.
func (n *nonces) issue(ctx context.Context) (string, error) {
	now := n.now()
	fresh := nonce.Nonce{Epoch: n.policy.Epoch(now), Issued: now}
	if _, err := io.ReadFull(n.rand, fresh.Random[:]); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	key, err := n.key(ctx, fresh.Epoch, true)
	if err != nil {
		return "", err
	}
	return nonce.Seal(key, fresh), nil
}

// check verifies s without spending it: its form, its times and its tag.
// A nonce that fails is a badNonce problem, found without writing
// anything; other errors are the store's.
func (n *nonces) check(ctx context.Context, s string) (nonce.Sealed, error) {
	if s == "" {
		return nonce.Sealed{}, acme.BadNonce("JWS has no nonce")
	}
	p, err := nonce.Parse(s)
	if err == nil {
		err = n.policy.Check(p.Nonce, n.now())
	}
	if err == nil {
		var key *nonce.Key
		switch key, err = n.key(ctx, p.Epoch, false); {
		case errors.Is(err, storage.ErrNotFound):
			err = nonce.ErrTag
		case err != nil:
			return p, err
		case !p.Verify(key):
			err = nonce.ErrTag
		}
	}
	if err != nil {
		return p, acme.BadNonce("nonce %q is not valid: %s", s, reason(err))
	}
	return p, nil
}

// reason is the badNonce detail for a failed check.
func reason(err error) string {
	switch {
	case errors.Is(err, nonce.ErrExpired):
		return "it has expired"
	case errors.Is(err, nonce.ErrFuture), errors.Is(err, nonce.ErrEpoch), errors.Is(err, nonce.ErrTag):
		return "it was not issued by this server, or under a key that is gone"
	}
	return "it is not a nonce of this server"
}

// key returns the MAC key of epoch, from this process's cache or else the
// store; create stores a new random key when the epoch has none, which
// only issuing does: checking a nonce never writes.
func (n *nonces) key(ctx context.Context, epoch uint32, create bool) (*nonce.Key, error) {
	n.mu.Lock()
	key, ok := n.keys[epoch]
	n.mu.Unlock()
	if ok {
		return key, nil
	}
	var candidate []byte
	if create {
		candidate = make([]byte, nonce.KeySize)
		if _, err := io.ReadFull(n.rand, candidate); err != nil {
			return nil, fmt.Errorf("random: %w", err)
		}
	}
	// Concurrent misses each ask the store; set-if-absent gives them all
	// the same key, and it happens once per epoch.
	secret, err := n.store.NonceKey(ctx, epoch, candidate, n.policy.KeyExpires(epoch))
	if err != nil {
		return nil, err
	}
	key = nonce.NewKey(secret)
	n.mu.Lock()
	defer n.mu.Unlock()
	if cached, ok := n.keys[epoch]; ok {
		return cached, nil
	}
	n.keys[epoch] = key
	// Drop the keys no nonce can be accepted under any more.
	oldest := n.policy.Epoch(n.now().Add(-n.policy.Lifetime - n.policy.Skew))
	for e := range n.keys {
		if e < oldest {
			delete(n.keys, e)
		}
	}
	return key, nil
}

// NewNonce issues a fresh anti-replay nonce (RFC 8555 §7.2). It writes
// nothing: the nonce authenticates itself.
func (a *Authority) NewNonce(ctx context.Context) (string, error) {
	return a.nonces.issue(ctx)
}

// ConsumeNonce accepts a nonce once (§6.5) and returns the fresh nonce the
// response carries; the fresh nonce is returned with a badNonce problem
// too. Only a nonce that checks out is recorded as spent.
func (a *Authority) ConsumeNonce(ctx context.Context, s string) (string, error) {
	next, err := a.nonces.issue(ctx)
	if err != nil {
		return "", err
	}
	p, err := a.nonces.check(ctx, s)
	if err != nil {
		return next, err
	}
	ok, err := a.cfg.Store.ConsumeNonce(ctx, p.ID(), a.nonces.policy.SpentUntil(p.Nonce))
	switch {
	case err != nil:
		return "", err
	case !ok:
		return next, acme.BadNonce("nonce %q was already used", s)
	}
	return next, nil
}

// ConsumeNonceForAccount is ConsumeNonce, Account and the read of the
// resource look names, for a request signed with kid: one store round trip
// for everything the request reads first. The account error comes first; a
// badNonce is returned with the Caller, so the caller can still check the
// signature before answering it.
func (a *Authority) ConsumeNonceForAccount(ctx context.Context, s, accountID string, look Lookup) (string, *Caller, error) {
	next, err := a.nonces.issue(ctx)
	if err != nil {
		return "", nil, err
	}
	p, bad := a.nonces.check(ctx, s)
	var pb *acme.Problem
	if bad != nil && !errors.As(bad, &pb) {
		return "", nil, bad
	}
	spend, until := p.ID(), a.nonces.policy.SpentUntil(p.Nonce)
	if bad != nil {
		spend = "" // a bad nonce is not recorded: only the reads go
	}
	found, err := a.cfg.Store.ConsumeNonceForAccount(ctx, spend, until, accountID, look)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return next, nil, acme.AccountDoesNotExist("account %q does not exist", accountID)
	case err != nil:
		return "", nil, err
	}
	c := &Caller{Account: found.Account, found: found, keyHash: look.KeyHash}
	switch {
	case bad != nil:
		return next, c, bad
	case !found.NonceOK:
		return next, c, acme.BadNonce("nonce %q was already used", s)
	}
	return next, c, nil
}
