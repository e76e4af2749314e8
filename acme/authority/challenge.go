package authority

import (
	"context"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// RespondChallenge is the client's "ready" for a challenge (§7.5.1). The
// first response moves the challenge to processing and, in the same write,
// queues one validation claimed by this replica, which runs it at once;
// responses racing with it, or coming after, change nothing.
func (a *Authority) RespondChallenge(ctx context.Context, c *Caller, authzID, challengeID string) (*acme.Authorization, error) {
	var claim storage.Claim
	az, err := a.cfg.Store.UpdateAuthorization(ctx, authzID, func(az *acme.Authorization) error {
		if az.AccountID != c.Account.ID {
			return acme.Unauthorized("authorization belongs to another account")
		}
		_, err := acme.StartChallenge(az, challengeID, a.now())
		return err
	}, storage.From(c.authz(authzID)), storage.Queue(storage.Job{AuthzID: authzID, ChallengeID: challengeID}, &claim))
	if err != nil {
		return nil, notFound(err, "authorization")
	}
	if claim.ID != "" {
		// A validation that finishes within ValidationWait is answered
		// now, saving the client a round of polling.
		if done, ok := runJob(ctx, a, a.cfg.ValidationWait, func(ctx context.Context) *acme.Authorization {
			return a.validate(ctx, claim, az, c.Account)
		}); ok {
			az = done
		}
	}
	return a.authzView(az), nil
}

// validate works one validation job on az, the authorization as stored,
// for acct, its account, and returns the authorization with the result
// recorded (nil if it could not be).
func (a *Authority) validate(ctx context.Context, claim storage.Claim, az *acme.Authorization, acct *acme.Account) *acme.Authorization {
	log := a.log.With("authz", az.ID, "challenge", claim.Job.ChallengeID)
	ch := az.Challenge(claim.Job.ChallengeID)
	if ch == nil || ch.Status != acme.StatusProcessing {
		a.finish(ctx, claim) // a job whose result is already recorded
		return az
	}
	keyAuth := acme.KeyAuthorization(ch.Token, acct.KeyThumbprint)
	out, err := a.cfg.Validator.Validate(ctx, acct.ID, ch.Type, az.Identifier, ch.Token, keyAuth)
	prob := out.Problem
	if err != nil {
		// TODO(issue 12): not performed; retry instead of failing.
		prob = acme.Connection("%v", err)
	}
	if prob != nil {
		prob = prob.For(az.Identifier)
	}
	now := a.now()
	var applied bool
	rec, err := a.cfg.Store.UpdateAuthorization(ctx, az.ID, func(az *acme.Authorization) error {
		applied = acme.FinishChallenge(az, claim.Job.ChallengeID, prob, now, now.Add(a.cfg.ValidAuthzLifetime))
		return nil
	}, storage.From(az), storage.Finishing(claim))
	if err != nil {
		log.ErrorContext(ctx, "validation job: record result", "err", err)
		return nil
	}
	if !applied {
		return rec // another worker recorded this job's result first
	}
	if prob != nil {
		log.InfoContext(ctx, "validation failed", "identifier", az.Identifier.Value, "type", ch.Type, "problem", prob.Error())
		return rec
	}
	log.InfoContext(ctx, "validation succeeded", "identifier", az.Identifier.Value, "type", ch.Type)
	return rec
}
