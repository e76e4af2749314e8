package acme

import "time"

// backdate is how far a certificate's notBefore precedes issuance, so that
// relying parties with a slightly slow clock accept it at once.
const backdate = time.Minute

// earliestNotBefore is how far in the past a client may ask notBefore to be.
const earliestNotBefore = time.Hour

// CertWindow decides a certificate's validity from the notBefore/notAfter an
// order asked for (zero when not asked), at time now: at most maxValidity
// from issuance (or from a later notBefore) to notAfter. The backdate is
// not counted, so a short --cert-validity still leaves its whole span.
// RFC 8555 §7.4 leaves the policy to the server.
func CertWindow(now, notBefore, notAfter time.Time, maxValidity time.Duration) (time.Time, time.Time, *Problem) {
	nb := notBefore
	if nb.IsZero() {
		nb = now.Add(-backdate)
	}
	start := now
	if nb.After(now) {
		start = nb
	}
	na := notAfter
	if na.IsZero() {
		na = start.Add(maxValidity)
	}
	switch {
	case nb.Before(now.Add(-earliestNotBefore)):
		return nb, na, Malformed("notBefore %s is more than %s in the past", nb.Format(time.RFC3339), earliestNotBefore)
	case nb.After(now.Add(maxValidity)):
		return nb, na, Malformed("notBefore %s is too far in the future", nb.Format(time.RFC3339))
	case !na.After(nb):
		return nb, na, Malformed("notAfter must be later than notBefore")
	case !na.After(now):
		return nb, na, Malformed("notAfter %s is in the past", na.Format(time.RFC3339))
	case na.Sub(start) > maxValidity:
		return nb, na, Malformed("requested validity %s exceeds the maximum of %s", na.Sub(start), maxValidity)
	}
	return nb.UTC(), na.UTC(), nil
}
