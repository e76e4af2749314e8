package authority

import (
	"context"
	"errors"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// errNothingToRequeue aborts a requeue update that another reader won.
var errNothingToRequeue = errors.New("nothing to requeue")

// requeueAuthz puts back the validation job of a challenge left processing
// longer than RequeueAfter: its replica may have died before queueing it.
// Clients poll, so their reads are what finds such a challenge. Jobs do
// nothing for a challenge no longer processing, so a needless requeue is
// harmless.
func (a *Authority) requeueAuthz(ctx context.Context, az *acme.Authorization) {
	now := a.now()
	if acme.RequeueChallenge(az, now, a.cfg.RequeueAfter) == "" {
		return
	}
	var chID string
	_, err := a.cfg.Store.UpdateAuthorization(ctx, az.ID, func(cur *acme.Authorization) error {
		if chID = acme.RequeueChallenge(cur, now, a.cfg.RequeueAfter); chID == "" {
			return errNothingToRequeue
		}
		return nil
	})
	if err == nil {
		err = a.cfg.Store.Enqueue(ctx, storage.Job{AuthzID: az.ID, ChallengeID: chID})
	}
	a.logRequeue(ctx, err, "authz", az.ID)
}

// requeueOrder is requeueAuthz for an order's issuance.
func (a *Authority) requeueOrder(ctx context.Context, o *acme.Order) {
	now := a.now()
	if !acme.RequeueOrder(o, now, a.cfg.RequeueAfter) {
		return
	}
	_, err := a.cfg.Store.UpdateOrder(ctx, o.ID, func(cur *acme.Order) error {
		if !acme.RequeueOrder(cur, now, a.cfg.RequeueAfter) {
			return errNothingToRequeue
		}
		return nil
	})
	if err == nil {
		err = a.cfg.Store.Enqueue(ctx, storage.Job{OrderID: o.ID})
	}
	a.logRequeue(ctx, err, "order", o.ID)
}

func (a *Authority) logRequeue(ctx context.Context, err error, kind, id string) {
	switch {
	case err == nil:
		a.log.WarnContext(ctx, "requeued a job left processing", kind, id)
	case !errors.Is(err, errNothingToRequeue):
		a.log.ErrorContext(ctx, "requeue job", kind, id, "err", err)
	}
}
