package authority

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

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
// for acct, its account, and returns the authorization with the outcome
// recorded. It returns nil when nothing was recorded: the validator could
// not perform the validation before ctx ended, or the store failed. The
// claim is then left unfinished (released, when the validation was not
// performed), the challenge stays processing, and the store's reclaim
// (Jobs.Consume, the one recovery path: DESIGN.md decision 4) hands the
// job out again; our own capacity or deadlines never make a challenge
// invalid.
func (a *Authority) validate(ctx context.Context, claim storage.Claim, az *acme.Authorization, acct *acme.Account) *acme.Authorization {
	log := a.log.With("authz", az.ID, "challenge", claim.Job.ChallengeID)
	ch := az.Challenge(claim.Job.ChallengeID)
	if ch == nil || ch.Status != acme.StatusProcessing {
		a.finish(ctx, claim) // a job whose result is already recorded
		return az
	}
	// A job handed out again and again, its validation never performed,
	// ends when its authorization expires: FinishChallenge records that
	// as the outcome, without a validation.
	var out acme.Validation
	if a.now().Before(az.Expires) {
		keyAuth := acme.KeyAuthorization(ch.Token, acct.KeyThumbprint)
		var err error
		if out, err = a.performValidation(ctx, acct.ID, ch, az.Identifier, keyAuth); err != nil {
			log.WarnContext(ctx, "validation not performed before the job's deadline; the store hands it out again",
				"identifier", az.Identifier.Value, "type", ch.Type, "err", err)
			a.cfg.Metrics.Validated(ch.Type, OutcomeNotPerformed)
			if err := a.cfg.Store.Release(context.WithoutCancel(ctx), claim); err != nil {
				log.ErrorContext(ctx, "release validation job", "err", err)
			}
			return nil
		}
	}
	if out.Problem != nil {
		out.Problem = out.Problem.For(az.Identifier)
	}
	now := a.now()
	// The outcome takes the authorization out of pending: it gives back
	// its pending count, and a failure counts against the identifier, in
	// the write that records it (no round trip of their own).
	counts := []storage.LimitCheck{a.pendingLimit(acct.ID, -1)}
	if out.Problem != nil {
		counts = append(counts, a.failedValidationLimit(acct.ID, az.Identifier, 1))
	}
	var applied bool
	rec, err := a.cfg.Store.UpdateAuthorization(ctx, az.ID, func(az *acme.Authorization) error {
		applied = acme.FinishChallenge(az, claim.Job.ChallengeID, out, now, now.Add(a.cfg.ValidAuthzLifetime))
		return nil
	}, append(a.spending(now, counts...), storage.From(az), storage.Finishing(claim))...)
	if err != nil {
		log.ErrorContext(ctx, "validation job: record result", "err", err)
		return nil
	}
	if !applied {
		return rec // another worker recorded this job's result first
	}
	// The trail of who proved control of what, from where.
	attrs := []any{"account", acct.ID, "authz", az.ID, "identifier", az.Identifier.Value, "challenge", ch.ID,
		"type", ch.Type, "outcome", rec.Status, "records", newAuditRecords(out.Records)}
	if rc := rec.Challenge(ch.ID); rc != nil && rc.Error != nil {
		attrs = append(attrs, "problem", rc.Error.Error())
	}
	a.audit(ctx, "authorization.validate", attrs...)
	a.cfg.Metrics.Validated(ch.Type, string(rec.Status))
	return rec
}

// performValidation asks the validator until it performs the validation,
// waiting between tries (RetryBackoff, doubling up to maxRetryBackoff, with
// jitter so that jobs turned away together do not come back together). Its
// error is the validator's last "not performed" once ctx has ended.
func (a *Authority) performValidation(ctx context.Context, accountID string, ch *acme.Challenge, id acme.Identifier, keyAuth string) (acme.Validation, error) {
	backoff := a.cfg.RetryBackoff
	for try := 1; ; try++ {
		out, err := a.cfg.Validator.Validate(ctx, accountID, ch.Type, id, ch.Token, keyAuth)
		if err == nil {
			return out, nil
		}
		wait := a.jitter(backoff)
		a.log.DebugContext(ctx, "validation not performed; retrying", "challenge", ch.ID, "try", try, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return acme.Validation{}, fmt.Errorf("%w (after %d tries: %w)", context.Cause(ctx), try, err)
		case <-t.C:
		}
		backoff = min(2*backoff, a.cfg.RetryBackoff*maxRetryBackoff)
	}
}

// maxRetryBackoff bounds the wait between tries, as a multiple of
// RetryBackoff.
const maxRetryBackoff = 16

// jitter returns a wait between d/2 and d.
func (a *Authority) jitter(d time.Duration) time.Duration {
	var b [8]byte
	if d < 2 {
		return d
	}
	if _, err := io.ReadFull(a.cfg.Rand, b[:]); err != nil {
		return d
	}
	return d/2 + time.Duration(binary.BigEndian.Uint64(b[:])%uint64(d/2))
}

// auditRecord is a validation record as audit events carry it: the names
// of the challenge JSON's validationRecord.
type auditRecord struct {
	URL               string          `json:"url,omitempty"`
	Hostname          string          `json:"hostname,omitempty"`
	Port              string          `json:"port,omitempty"`
	AddressesResolved []string        `json:"addressesResolved,omitempty"`
	AddressUsed       string          `json:"addressUsed,omitempty"`
	DNSQueries        []auditDNSQuery `json:"dnsQueries,omitempty"`
}

type auditDNSQuery struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Answers []string `json:"answers"`
}

// auditRecords is how the records appear in the log: a JSON array under
// the JSON handler and, as JSON text, under the text handler (whose
// default rendering of structs drops the field names).
type auditRecords []auditRecord

func (r auditRecords) MarshalJSON() ([]byte, error) { return json.Marshal([]auditRecord(r)) }
func (r auditRecords) MarshalText() ([]byte, error) { return r.MarshalJSON() }

func newAuditRecords(recs []acme.ValidationRecord) auditRecords {
	out := make(auditRecords, len(recs))
	for i, r := range recs {
		out[i] = auditRecord{URL: r.URL, Hostname: r.Hostname, Port: r.Port, AddressesResolved: r.AddressesResolved, AddressUsed: r.AddressUsed}
		for _, q := range r.Queries {
			out[i].DNSQueries = append(out[i].DNSQueries, auditDNSQuery{Name: q.Name, Type: q.Type, Answers: q.Answers})
		}
	}
	return out
}
