package acme

import "time"

// ARI's polling interval (RFC 9773 §4.3, the Retry-After of a renewalInfo
// answer) is a fiftieth of the certificate's lifetime within these
// bounds: a 24-hour certificate is checked about every 30 minutes, a
// 7-day one every 3.4 hours, a 90-day one every 6 hours, as Let's
// Encrypt asks. A certificate an operator flagged (a campaign) or
// revoked is checked every ARIRetryUrgent until it is replaced.
const (
	ARIRetryMin    = time.Minute
	ARIRetryMax    = 6 * time.Hour
	ARIRetryUrgent = time.Minute
	// ariMinWindow is the shortest window served: acmez discards one of
	// a second or less as invalid, and RFC 9773 §4.2 forbids an end at or
	// before the start.
	ariMinWindow = 2 * time.Second
	// ariPastWindow is how far back a "renew now" window starts.
	ariPastWindow = time.Hour
)

// SuggestedWindow is the RFC 9773 suggestedWindow served for c at now,
// in whole seconds as RFC 3339 carries it. A revoked certificate gets a
// window that has already ended, which every client reads as "renew now";
// any other its RenewalWindow. Every window starts after c's notBefore
// (cert-manager ignores one that starts at or before it) and lasts at
// least ariMinWindow.
func (c *Certificate) SuggestedWindow(now time.Time) (start, end time.Time) {
	if c.Revoked {
		end = now.Truncate(time.Second)
		start = end.Add(-ariPastWindow)
	} else {
		start, end = c.RenewalWindow()
		start, end = start.Truncate(time.Second), end.Truncate(time.Second)
	}
	if floor := c.NotBefore.Truncate(time.Second).Add(time.Second); start.Before(floor) {
		start = floor
	}
	if end.Sub(start) < ariMinWindow {
		// Only a certificate revoked in its first seconds, or one
		// lasting a few seconds: the window then runs a moment past now.
		end = start.Add(ariMinWindow)
	}
	return start, end
}

// ARIRetryAfter is how long a client should wait before asking for c's
// renewal information again (RFC 9773 §4.3).
func (c *Certificate) ARIRetryAfter(now time.Time) time.Duration {
	if c.ReplacedBy == "" && now.Before(c.NotAfter) && (c.Revoked || c.CampaignID != "") {
		// Until it is replaced, a client that could not renew at once
		// should try again soon, not in hours.
		return ARIRetryUrgent
	}
	return min(max(c.NotAfter.Sub(c.NotBefore)/50, ARIRetryMin), ARIRetryMax)
}
