package acme

import "time"

// The status state machine of RFC 8555 §7.1.6. Every function here is pure:
// it reads or changes the resource it is given, at the time it is given.
// Callers run these inside a store's compare-and-set update, so a transition
// is applied only to the state it was decided on.

// AuthzStatus is the status a client sees: a pending or valid authorization
// whose expiry has passed is expired.
func AuthzStatus(a *Authorization, now time.Time) Status {
	if (a.Status == StatusPending || a.Status == StatusValid) && !now.Before(a.Expires) {
		return StatusExpired
	}
	return a.Status
}

// StartChallenge marks a challenge processing when the client responds to it.
// It reports whether a validation must now run; responding again to a
// challenge already processing or valid changes nothing (§7.5.1).
func StartChallenge(a *Authorization, challengeID string, now time.Time) (bool, error) {
	ch := a.Challenge(challengeID)
	if ch == nil {
		return false, NotFound("no such challenge")
	}
	switch ch.Status {
	case StatusProcessing, StatusValid:
		return false, nil
	case StatusInvalid:
		return false, Malformed("challenge is invalid; create a new order to try again")
	}
	if st := AuthzStatus(a, now); st != StatusPending {
		return false, Malformed("authorization is %s, not pending", st)
	}
	ch.Status, ch.Queued = StatusProcessing, now
	return true, nil
}

// FinishChallenge records a validation's outcome, with the records of what
// it checked. A nil problem makes the challenge and its authorization valid
// until validUntil; a problem makes both invalid. The outcome of a stale
// job (challenge no longer processing) is ignored and reported as false.
// There is no outcome for a validation that was not performed: its
// challenge stays processing, and this is not called.
func FinishChallenge(a *Authorization, challengeID string, v Validation, now, validUntil time.Time) bool {
	ch := a.Challenge(challengeID)
	if ch == nil || ch.Status != StatusProcessing || a.Status != StatusPending {
		return false
	}
	ch.ValidationRecords = v.Records
	if v.Problem != nil {
		ch.Status, ch.Error = StatusInvalid, v.Problem
		a.Status = StatusInvalid
		return true
	}
	if !now.Before(a.Expires) {
		ch.Status, ch.Error = StatusInvalid, Malformed("authorization expired during validation")
		a.Status = StatusInvalid
		return true
	}
	ch.Status, ch.Validated = StatusValid, now
	a.Status = StatusValid
	a.Expires = validUntil
	return true
}

// DeactivateAuthz is the client's deactivation of §7.5.2: allowed from
// pending or valid only.
func DeactivateAuthz(a *Authorization, now time.Time) error {
	if st := AuthzStatus(a, now); st != StatusPending && st != StatusValid {
		return Unauthorized("authorization is %s and cannot be deactivated", st)
	}
	a.Status = StatusDeactivated
	return nil
}

// OrderStatus derives an order's status from its stored state, its
// authorizations and the time.
func OrderStatus(o *Order, authzs []*Authorization, now time.Time) Status {
	switch o.Status {
	case StatusProcessing, StatusValid, StatusInvalid:
		return o.Status
	}
	if !now.Before(o.Expires) {
		return StatusInvalid
	}
	ready := true
	for _, a := range authzs {
		switch AuthzStatus(a, now) {
		case StatusValid:
		case StatusPending:
			ready = false
		default: // invalid, deactivated, expired, revoked
			return StatusInvalid
		}
	}
	if ready {
		return StatusReady
	}
	return StatusPending
}

// BeginFinalize moves a ready order to processing with the CSR to sign;
// only the caller that wins this transition queues the issuance.
func BeginFinalize(o *Order, authzs []*Authorization, csr []byte, now time.Time) error {
	if st := OrderStatus(o, authzs, now); st != StatusReady {
		return OrderNotReady("order is %s, not ready", st)
	}
	o.Status, o.CSR, o.Queued = StatusProcessing, csr, now
	return nil
}

// FinishFinalize records the certificate of a processing order, or the
// problem that stopped it.
func FinishFinalize(o *Order, serial string, prob *Problem) error {
	if o.Status != StatusProcessing {
		return OrderNotReady("order is %s, not processing", o.Status)
	}
	o.CSR = nil
	if prob != nil {
		o.Status, o.Error = StatusInvalid, prob
		return nil
	}
	o.Status, o.CertSerial = StatusValid, serial
	return nil
}

// AbortFinalize returns a processing order to where BeginFinalize found
// it (ready again, no CSR) after a transient signing failure, so that the
// client's next finalize tries anew instead of meeting orderNotReady.
func AbortFinalize(o *Order) error {
	if o.Status != StatusProcessing {
		return OrderNotReady("order is %s, not processing", o.Status)
	}
	o.Status, o.CSR, o.Queued = StatusPending, nil, time.Time{}
	return nil
}

// DeactivateAccount is §7.3.6; a deactivated account stays deactivated.
func DeactivateAccount(a *Account) error {
	if a.Status != StatusValid {
		return Unauthorized("account is %s", a.Status)
	}
	a.Status = StatusDeactivated
	return nil
}

// Revoke marks a certificate revoked; a second revocation is
// alreadyRevoked, except keyCompromise for a certificate revoked for
// another reason: its reason becomes keyCompromise (the revocation date
// stays), so that relying parties learn the key is bad once its holder
// does.
func Revoke(c *Certificate, reason int, now time.Time) error {
	if c.Revoked {
		if reason == int(ReasonKeyCompromise) && c.Reason != reason {
			c.Reason = reason
			return nil
		}
		return AlreadyRevoked("certificate %s is already revoked (reason %d, %s)", c.Serial, c.Reason, RevocationReason(c.Reason))
	}
	c.Revoked, c.RevokedAt, c.Reason = true, now, reason
	return nil
}
