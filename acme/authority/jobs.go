package authority

import (
	"context"
	"errors"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// runJob runs a claimed job for the request that queued it, in a goroutine
// of its own bounded by JobTimeout rather than by the request, so a client
// that hangs up does not leave it half done; Drain waits for such jobs at
// shutdown. It waits up to wait for the result, so a job that finishes
// fast is answered in the same response (DESIGN.md decision 4); ok is false
// if it did not finish in time or finished without a result.
func runJob[T any](ctx context.Context, a *Authority, wait time.Duration, job func(context.Context) *T) (res *T, ok bool) {
	out := make(chan *T, 1)
	jobCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.JobTimeout)
	a.cfg.Metrics.JobsRunning(1)
	a.jobs.Go(func() {
		defer cancel()
		defer a.cfg.Metrics.JobsRunning(-1)
		out <- job(jobCtx)
	})
	if wait <= 0 {
		return nil, false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case res = <-out:
		return res, res != nil
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// work runs a job Consume handed over: one whose claim another replica
// (or an earlier run) left unfinished. Its resource is read afresh.
func (a *Authority) work(ctx context.Context, claim storage.Claim) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.JobTimeout)
	defer cancel()
	a.cfg.Metrics.JobsRunning(1)
	defer a.cfg.Metrics.JobsRunning(-1)
	if id := claim.Job.OrderID; id != "" {
		o, err := a.cfg.Store.Order(ctx, id)
		if err != nil {
			a.dropJob(ctx, claim, err)
			return
		}
		a.issue(ctx, claim, o)
		return
	}
	az, err := a.cfg.Store.Authorization(ctx, claim.Job.AuthzID)
	if err != nil {
		a.dropJob(ctx, claim, err)
		return
	}
	acct, err := a.cfg.Store.Account(ctx, az.AccountID)
	if err != nil {
		a.dropJob(ctx, claim, err)
		return
	}
	a.validate(ctx, claim, az, acct)
}

// dropJob finishes a job whose resource is gone; on any other error the
// job is left to be handed out again.
func (a *Authority) dropJob(ctx context.Context, claim storage.Claim, err error) {
	if errors.Is(err, storage.ErrNotFound) {
		a.finish(ctx, claim)
		return
	}
	a.log.ErrorContext(ctx, "job: load", "job", claim.Job, "err", err)
}

// finish ends a claim that needs no write.
func (a *Authority) finish(ctx context.Context, claim storage.Claim) {
	if err := a.cfg.Store.Finish(ctx, claim); err != nil {
		a.log.ErrorContext(ctx, "finish job", "job", claim.Job, "err", err)
	}
}

// isProblem reports whether err came from the state machine (fn refused
// the change) rather than from the store.
func isProblem(err error) bool {
	var p *acme.Problem
	return errors.As(err, &p)
}
