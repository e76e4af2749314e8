package authority

import (
	"context"
	"errors"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// RespondChallenge is the client's "ready" for a challenge (§7.5.1). The
// first response moves the challenge to processing and queues one
// validation; responses racing with it, or coming after, change nothing.
func (a *Authority) RespondChallenge(ctx context.Context, acct *acme.Account, authzID, challengeID string) (*acme.Authorization, error) {
	var started bool
	az, err := a.cfg.Store.UpdateAuthorization(ctx, authzID, func(az *acme.Authorization) error {
		if az.AccountID != acct.ID {
			return acme.Unauthorized("authorization belongs to another account")
		}
		var err error
		started, err = acme.StartChallenge(az, challengeID, a.now())
		return err
	})
	if err != nil {
		return nil, notFound(err, "authorization")
	}
	if !started {
		az.Status = acme.AuthzStatus(az, a.now())
		return az, nil
	}
	job := storage.Job{AuthzID: authzID, ChallengeID: challengeID}
	done := a.waiters.add(job)
	defer a.waiters.remove(job, done)
	if err := a.cfg.Store.Enqueue(ctx, job); err != nil {
		a.resetChallenge(ctx, authzID, challengeID)
		return nil, err
	}
	// A validation that finishes within ValidationWait is answered now,
	// saving the client a round of polling.
	if a.await(ctx, done, a.cfg.ValidationWait, func(ctx context.Context) bool {
		az, err := a.cfg.Store.Authorization(ctx, authzID)
		if err != nil {
			return true
		}
		ch := az.Challenge(challengeID)
		return ch == nil || ch.Status != acme.StatusProcessing
	}) {
		return a.Authorization(ctx, acct, authzID)
	}
	az.Status = acme.AuthzStatus(az, a.now())
	return az, nil
}

// resetChallenge undoes StartChallenge when no job could be queued, so the
// client may respond again instead of polling a challenge nobody works on.
func (a *Authority) resetChallenge(ctx context.Context, authzID, challengeID string) {
	_, err := a.cfg.Store.UpdateAuthorization(ctx, authzID, func(az *acme.Authorization) error {
		if ch := az.Challenge(challengeID); ch != nil && ch.Status == acme.StatusProcessing {
			ch.Status = acme.StatusPending
		}
		return nil
	})
	if err != nil {
		a.log.ErrorContext(ctx, "reset challenge after failed enqueue", "authz", authzID, "err", err)
	}
}

// validate works one validation job.
func (a *Authority) validate(ctx context.Context, job storage.Job) {
	log := a.log.With("authz", job.AuthzID, "challenge", job.ChallengeID)

	az, err := a.cfg.Store.Authorization(ctx, job.AuthzID)
	if err != nil {
		log.ErrorContext(ctx, "validation job: load authorization", "err", err)
		return
	}
	ch := az.Challenge(job.ChallengeID)
	if ch == nil || ch.Status != acme.StatusProcessing {
		return // a redelivered job whose result is already recorded
	}
	acct, err := a.cfg.Store.Account(ctx, az.AccountID)
	if err != nil {
		log.ErrorContext(ctx, "validation job: load account", "err", err)
		return
	}
	keyAuth := acme.KeyAuthorization(ch.Token, acct.KeyThumbprint)
	var prob *acme.Problem
	if err := a.cfg.Validator.Validate(ctx, ch.Type, az.Identifier, ch.Token, keyAuth); err != nil {
		if !errors.As(err, &prob) {
			prob = acme.Connection("%v", err)
		}
		prob = prob.For(az.Identifier)
	}
	now := a.now()
	var applied bool
	_, err = a.cfg.Store.UpdateAuthorization(ctx, job.AuthzID, func(az *acme.Authorization) error {
		applied = acme.FinishChallenge(az, job.ChallengeID, prob, now, now.Add(a.cfg.ValidAuthzLifetime))
		return nil
	})
	if err != nil {
		log.ErrorContext(ctx, "validation job: record result", "err", err)
		return
	}
	if !applied {
		return // another worker recorded this job's result first
	}
	if prob != nil {
		log.InfoContext(ctx, "validation failed", "identifier", az.Identifier.Value, "type", ch.Type, "problem", prob.Error())
		return
	}
	log.InfoContext(ctx, "validation succeeded", "identifier", az.Identifier.Value, "type", ch.Type)
}
