package authority

import (
	"context"
	"errors"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Lookup names the resource a signed request is about, so that its read
// joins the nonce's and the account's in one store round trip.
type Lookup = storage.Lookup

// Caller is the account behind a signed request, with the resource the
// request named, as read in the same round trip as its nonce. Reads of
// that resource are served from it; any other is read from the store.
type Caller struct {
	Account *acme.Account
	found   storage.Found
	// keyHash is the key the request's read looked up among the
	// blocked ones (Lookup.KeyHash), "" for none.
	keyHash string
}

// CallerOf is a Caller that has read nothing but its account.
func CallerOf(acct *acme.Account) *Caller { return &Caller{Account: acct} }

// authz returns the authorization read with the request if it is id,
// else nil. The copy is the store's: a caller that changes it must not
// pass it on as storage.From.
func (c *Caller) authz(id string) *acme.Authorization {
	if az := c.found.Authz; az != nil && az.ID == id {
		return az
	}
	return nil
}

// loadOrder returns the stored order, from the request's read if it has it.
func (a *Authority) loadOrder(ctx context.Context, c *Caller, id string) (*acme.Order, error) {
	if o := c.found.Order; o != nil && o.ID == id {
		return o, nil
	}
	return a.cfg.Store.Order(ctx, id)
}

func (a *Authority) loadAuthz(ctx context.Context, c *Caller, id string) (*acme.Authorization, error) {
	if az := c.authz(id); az != nil {
		return az, nil
	}
	return a.cfg.Store.Authorization(ctx, id)
}

// loadCertificate reads a certificate by serial in any form openssl or
// an older acmed shows it (certificateBySerial); what is not a serial is
// no certificate.
func (a *Authority) loadCertificate(ctx context.Context, c *Caller, serial string) (*acme.Certificate, error) {
	canonical, ok := acme.NormalizeSerial(serial)
	if !ok {
		return nil, storage.ErrNotFound
	}
	if cert := c.found.Certificate; cert != nil && (cert.Serial == canonical || cert.Serial == acme.LegacySerial(canonical)) {
		return cert, nil
	}
	return a.certificateBySerial(ctx, canonical)
}

// checkKeyNotBlocked refuses a key reported compromised (spki: its DER
// SubjectPublicKeyInfo) with badPublicKey. A finalize request looked its
// CSR's key up with its account (Lookup.KeyHash): that answer costs no
// read; any other key is read from the store.
func (a *Authority) checkKeyNotBlocked(ctx context.Context, c *Caller, spki []byte) error {
	hash := acme.KeyHash(spki)
	if c != nil && c.keyHash == hash {
		if c.found.BlockedKey != nil {
			return acme.KeyBlocked()
		}
		return nil
	}
	return a.checkHashNotBlocked(ctx, hash)
}

func (a *Authority) checkHashNotBlocked(ctx context.Context, hash string) error {
	_, err := a.cfg.Store.BlockedKey(ctx, hash)
	switch {
	case err == nil:
		return acme.KeyBlocked()
	case errors.Is(err, storage.ErrNotFound):
		return nil
	}
	return err
}

// checkAccountKeyNotBlocked is checkKeyNotBlocked for a new account key
// (new-account, key change): one read, on those paths only.
func (a *Authority) checkAccountKeyNotBlocked(ctx context.Context, key *jose.JSONWebKey) error {
	hash, err := acme.PublicKeyHash(key.Key)
	if err != nil {
		return acme.BadPublicKey("%v", err)
	}
	return a.checkHashNotBlocked(ctx, hash)
}
