package authority

import (
	"context"
	"errors"
	"slices"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// errNothingToRequeue aborts a requeue update that another reader won.
var errNothingToRequeue = errors.New("nothing to requeue")

// requeueAuthz queues again the validation of a challenge left processing
// longer than RequeueAfter: on a Redis Cluster the write that moved it and
// the job queued for it are two steps, and a replica may die between them.
// Clients poll, so their reads are what finds such a challenge. The job
// runs here, in the background; jobs do nothing for a challenge no longer
// processing, so a needless requeue is harmless.
func (a *Authority) requeueAuthz(ctx context.Context, az *acme.Authorization, acct *acme.Account) {
	now := a.now()
	probe := *az // RequeueChallenge marks what it finds; az stays as stored
	probe.Challenges = slices.Clone(az.Challenges)
	chID := acme.RequeueChallenge(&probe, now, a.cfg.RequeueAfter)
	if chID == "" {
		return
	}
	var claim storage.Claim
	cur, err := a.cfg.Store.UpdateAuthorization(ctx, az.ID, func(cur *acme.Authorization) error {
		if acme.RequeueChallenge(cur, now, a.cfg.RequeueAfter) != chID {
			return errNothingToRequeue
		}
		return nil
	}, storage.From(az), storage.Queue(storage.Job{AuthzID: az.ID, ChallengeID: chID}, &claim))
	if err == nil && claim.ID != "" {
		runJob(ctx, a, 0, func(ctx context.Context) *acme.Authorization { return a.validate(ctx, claim, cur, acct) })
	}
	a.logRequeue(ctx, err, "authz", az.ID)
}

// requeueOrder is requeueAuthz for an order's issuance.
func (a *Authority) requeueOrder(ctx context.Context, o *acme.Order) {
	now := a.now()
	if probe := *o; !acme.RequeueOrder(&probe, now, a.cfg.RequeueAfter) {
		return
	}
	var claim storage.Claim
	cur, err := a.cfg.Store.UpdateOrder(ctx, o.ID, func(cur *acme.Order) error {
		if !acme.RequeueOrder(cur, now, a.cfg.RequeueAfter) {
			return errNothingToRequeue
		}
		return nil
	}, storage.From(o), storage.Queue(storage.Job{OrderID: o.ID}, &claim))
	if err == nil && claim.ID != "" {
		runJob(ctx, a, 0, func(ctx context.Context) *acme.Order { return a.issue(ctx, claim, cur) })
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
