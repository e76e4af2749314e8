package authority

import (
	"context"
	"fmt"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Dashboard is the estate at a glance: what the admin listener's HTML page
// shows.
type Dashboard struct {
	At     time.Time
	Counts storage.CertCounts
	// Within is how far ahead Expiring looks.
	Within time.Duration
	// Expiring: valid certificates whose notAfter is within Within,
	// soonest first (replaced ones included: their ReplacedBy says so).
	Expiring []CertView
	// NotRenewed: unexpired certificates past the start of their renewal
	// window and not replaced, soonest to expire first.
	NotRenewed []CertView
	// MoreExpiring and MoreNotRenewed: the lists were cut at the limit.
	MoreExpiring, MoreNotRenewed bool
	Campaigns                    []CampaignStatus // newest first
}

// AdminDashboard gathers the dashboard: at most limit certificates in each
// list, and every campaign with its progress.
func (a *Authority) AdminDashboard(ctx context.Context, by Operator, within time.Duration, limit int) (Dashboard, error) {
	const event = "admin.dashboard"
	if limit <= 0 || limit > MaxCertsPage || within <= 0 {
		return Dashboard{}, fmt.Errorf("%w: dashboard limit %d, within %s", ErrBadRequest, limit, within)
	}
	s, err := a.estate(ctx, event, by)
	if err != nil {
		return Dashboard{}, err
	}
	now := a.now()
	d := Dashboard{At: now, Within: within}
	if d.Counts, err = s.CountCertificates(ctx, now, []time.Duration{within}); err != nil {
		return Dashboard{}, err
	}
	list := func(f storage.CertFilter) ([]CertView, bool, error) {
		f.Now = now
		certs, next, err := s.ListCertificates(ctx, f, "", limit)
		if err != nil {
			return nil, false, err
		}
		out := make([]CertView, len(certs))
		for i, c := range certs {
			out[i] = certView(c, now)
		}
		return out, next != "", nil
	}
	if d.Expiring, d.MoreExpiring, err = list(storage.CertFilter{Status: acme.CertValid, ExpiringWithin: within}); err != nil {
		return Dashboard{}, err
	}
	if d.NotRenewed, d.MoreNotRenewed, err = list(storage.CertFilter{NotRenewed: true}); err != nil {
		return Dashboard{}, err
	}
	if d.Campaigns, err = a.campaigns(ctx, s); err != nil {
		return Dashboard{}, err
	}
	a.audit(ctx, event, "caller", string(by), "expiring", len(d.Expiring), "not_renewed", len(d.NotRenewed), "campaigns", len(d.Campaigns))
	return d, nil
}
