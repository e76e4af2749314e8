package authority

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Operator names who asked for an admin action, as the admin API
// authenticated them ("token", or a client certificate's subject); every
// admin use case records it in its audit event.
type Operator string

// MaxAccountsPage bounds one page of ListAccounts.
const MaxAccountsPage = 1000

// ListAccounts returns a page of accounts after cursor ("" for the first),
// and the cursor of the next page ("" at the end). An ID the list holds
// whose account is gone (a creation that failed half way) is skipped.
func (a *Authority) ListAccounts(ctx context.Context, by Operator, cursor string, limit int) ([]*acme.Account, string, error) {
	if limit <= 0 || limit > MaxAccountsPage {
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadRequest, limit, MaxAccountsPage)
	}
	ids, next, err := a.cfg.Store.ListAccounts(ctx, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	accts := make([]*acme.Account, 0, len(ids))
	for _, id := range ids {
		acct, err := a.cfg.Store.Account(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		accts = append(accts, acct)
	}
	a.audit(ctx, "admin.accounts.list", "caller", string(by), "cursor", cursor, "count", len(accts))
	return accts, next, nil
}

// AdminAccount returns one account; a missing one is storage.ErrNotFound.
func (a *Authority) AdminAccount(ctx context.Context, by Operator, id string) (*acme.Account, error) {
	acct, err := a.cfg.Store.Account(ctx, id)
	if err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.accounts.show", "caller", string(by), "account", id)
	return acct, nil
}

// AdminDeactivateAccount deactivates an account for good (RFC 8555
// §7.3.6): its key then authorizes no request at all. Deactivating an
// account already deactivated changes nothing and is not an error, so
// an operator may repeat it.
func (a *Authority) AdminDeactivateAccount(ctx context.Context, by Operator, id string) (*acme.Account, error) {
	acct, err := a.cfg.Store.UpdateAccount(ctx, id, func(cur *acme.Account) error {
		if cur.Status == acme.StatusDeactivated {
			return errUnchanged
		}
		cur.Status = acme.StatusDeactivated
		return nil
	})
	if errors.Is(err, errUnchanged) {
		acct, err = a.cfg.Store.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		a.audit(ctx, "admin.accounts.deactivate", "caller", string(by), "account", id, "changed", false)
		return acct, nil
	}
	if err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.accounts.deactivate", "caller", string(by), "account", id, "changed", true)
	return acct, nil
}

// ErrBadRequest marks an admin request the authority refuses as malformed;
// the admin API answers it with 400.
var ErrBadRequest = errors.New("bad request")

// errUnchanged aborts an update that has nothing to write.
var errUnchanged = errors.New("unchanged")

// ErrNoBackup: the store cannot be copied through acmed (Redis keeps its
// own persistence); the admin API says what to use instead.
var ErrNoBackup = errors.New("this store is not backed up through acmed")

// backupStore is a store that can copy itself while serving (embedded).
type backupStore interface {
	Backup(ctx context.Context, start func(size int64) (io.Writer, error)) (int64, error)
}

// Backup writes a consistent copy of the store to the writer start
// returns once it knows the copy's size. A store that cannot is
// ErrNoBackup, before start is called.
func (a *Authority) Backup(ctx context.Context, by Operator, start func(size int64) (io.Writer, error)) (int64, error) {
	b, ok := a.cfg.Store.(backupStore)
	if !ok {
		a.audit(ctx, "admin.backup", "caller", string(by), "err", ErrNoBackup)
		return 0, ErrNoBackup
	}
	n, err := b.Backup(ctx, start)
	if err != nil {
		a.audit(ctx, "admin.backup", "caller", string(by), "bytes", n, "err", err)
		return n, err
	}
	a.audit(ctx, "admin.backup", "caller", string(by), "bytes", n)
	return n, nil
}
