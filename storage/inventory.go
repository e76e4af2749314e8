package storage

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

// CertFilter selects certificates from the inventory. Zero fields select
// everything; set fields must all hold.
type CertFilter struct {
	// Now is the time statuses and windows are judged at; required.
	Now time.Time
	// Status: valid (unexpired, not revoked), revoked or expired.
	Status acme.CertStatus
	// ExpiringWithin: unexpired and notAfter <= Now+ExpiringWithin
	// (revoked ones too, unless Status says otherwise).
	ExpiringWithin time.Duration
	// NotRenewed: unexpired, not revoked, renewal window (a campaign's
	// included) started at or before Now, and not replaced.
	NotRenewed bool
	// SANSuffix: an identifier equals it or ends with "."+SANSuffix
	// (lower case; IP identifiers match only whole).
	SANSuffix string
	Account   string
	Profile   string
	// IssuedBefore: notBefore before it (campaigns: --issued-before).
	IssuedBefore time.Time
	// Serials: one of these canonical serials (campaigns: --serial).
	Serials []string
}

// CertCounts is the estate at one time, for metrics. Expiring is keyed by
// the windows asked for.
type CertCounts struct {
	Valid, Revoked, Expired int64
	Expiring                map[time.Duration]int64 // valid, notAfter within
	NotRenewed              int64
}

// Inventory indexes every issued certificate, kept as long as the
// certificate record (Retention after notAfter), for operators' queries
// that never scan the whole estate: each is answered from an index whose
// entries the query returns or skips a bounded number of.
//
// A certificate enters the inventory in the write that stores it
// (PutCertificate, or UpdateOrder with WithCertificate), in the same atomic
// step where the backend can. That write also records replacement: the
// new certificate's Replaces (set by the caller from the order's
// replaces, else found by the store as the account's latest unreplaced
// certificate for exactly the same identifiers) gets ReplacedBy set to the
// new serial and leaves the not-renewed set. Revocation (UpdateCertificate
// setting Revoked) updates the indexes too.
type Inventory interface {
	// ListCertificates returns up to limit certificates matching f,
	// ordered by notAfter then serial, after cursor ("" for the first
	// page); next is "" after the last page, and a page shorter than limit
	// is the last. A cursor is opaque.
	ListCertificates(ctx context.Context, f CertFilter, cursor string, limit int) (certs []*acme.Certificate, next string, err error)
	// CountCertificates counts the estate at now, in time independent of
	// its size (index counts, not scans).
	CountCertificates(ctx context.Context, now time.Time, expiringWithin []time.Duration) (CertCounts, error)
}

// Campaigns keeps operator-driven early renewals (RFC 9773 windows moved
// by an operator).
type Campaigns interface {
	// CreateCampaign moves the renewal window of every certificate
	// matching f that is unexpired, not revoked and not replaced to
	// [c.WindowStart, c.WindowEnd] (RenewAfter/RenewBefore, CampaignID
	// set), records c with the serials matched, and returns how many
	// matched (c.Matched is set to it). Matching nothing records nothing
	// and returns 0.
	CreateCampaign(ctx context.Context, c *acme.Campaign, f CertFilter) (int, error)
	// Campaign is ErrNotFound for an unknown ID.
	Campaign(ctx context.Context, id string) (*acme.Campaign, error)
	// ListCampaigns returns every campaign, newest first.
	ListCampaigns(ctx context.Context) ([]*acme.Campaign, error)
	// CampaignPending pages through the campaign's serials not yet
	// replaced (nor expired, by the store's clock), in an order of the
	// store's choosing, and counts them. An unknown campaign is
	// ErrNotFound.
	CampaignPending(ctx context.Context, id, cursor string, limit int) (serials []string, next string, pending int, err error)
}

// Estate is the certificate estate (issue 15) a backend keeps besides
// Store.
type Estate interface {
	Inventory
	Campaigns
	Leases
	AlertOutbox
}

// Leases elect one replica for a periodic task.
type Leases interface {
	// TryLease takes the named lease for holder for ttl, or extends it if
	// holder has it; it reports whether holder has it now.
	TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
}

// AlertOutbox delivers each expiry alert once per certificate, event and
// webhook, across replicas, and loses none.
type AlertOutbox interface {
	// QueueAlert records a for delivery to each of urls, each due at
	// a.DetectedAt, unless an alert for the same event and serial was
	// queued before (delivered or not); it reports whether it queued.
	QueueAlert(ctx context.Context, a acme.Alert, urls []string) (bool, error)
	// DueAlerts returns up to limit deliveries due at now (Due <= now).
	DueAlerts(ctx context.Context, now time.Time, limit int) ([]AlertDelivery, error)
	// AlertDelivered removes a delivery (one already gone is no error);
	// AlertRetry makes it due again at, with attempts, and never brings
	// back a delivered one.
	AlertDelivered(ctx context.Context, id string) error
	AlertRetry(ctx context.Context, id string, at time.Time, attempts int) error
}

// AlertDelivery is one alert to one webhook.
type AlertDelivery struct {
	ID       string
	URL      string
	Alert    acme.Alert
	Attempts int
	Due      time.Time
}

// Match reports whether c, as stored, is selected by f: the filter's
// meaning in one place, for backends that narrow by an index and check
// the rest on the record.
func (f CertFilter) Match(c *acme.Certificate) bool {
	unexpired := f.Now.Before(c.NotAfter)
	switch {
	case f.Status != "" && c.Status(f.Now) != f.Status,
		f.ExpiringWithin > 0 && (!unexpired || c.NotAfter.After(f.Now.Add(f.ExpiringWithin))),
		f.NotRenewed && !NotRenewed(c, f.Now),
		f.SANSuffix != "" && !slices.ContainsFunc(c.Identifiers, func(id acme.Identifier) bool { return SANMatch(id, f.SANSuffix) }),
		f.Account != "" && c.AccountID != f.Account,
		f.Profile != "" && c.Profile != f.Profile,
		!f.IssuedBefore.IsZero() && !c.NotBefore.Before(f.IssuedBefore),
		len(f.Serials) > 0 && !slices.Contains(f.Serials, c.Serial):
		return false
	}
	return true
}

// NotRenewed reports whether c is unexpired, not revoked, past the start
// of its renewal window (a campaign's included) and not replaced at now.
func NotRenewed(c *acme.Certificate, now time.Time) bool {
	start, _ := c.RenewalWindow()
	return now.Before(c.NotAfter) && !c.Revoked && c.ReplacedBy == "" && !start.After(now)
}

// SANMatch reports whether id is suffix or a name under it; an IP
// address matches only whole.
func SANMatch(id acme.Identifier, suffix string) bool {
	if id.Value == suffix {
		return true
	}
	return id.Type != acme.IdentifierIP && strings.HasSuffix(id.Value, "."+suffix)
}
