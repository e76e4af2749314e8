package alerts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// pageSize is how many certificates or serials one store call returns.
const pageSize = 500

// scan queues an alert for every certificate past its renewal window and
// not replaced, and for every certificate of a campaign whose window
// closed more than CampaignGrace ago and that is still not replaced. Its
// cost is what the queries return, never the estate: the not-renewed
// index holds only certificates whose window has started, a campaign's
// pending list only its certificates not yet replaced.
func (a *Alerter) scan(ctx context.Context, now time.Time) error {
	seen := make(map[string]struct{}, len(a.seen))
	queued := 0
	f := storage.CertFilter{Now: now, NotRenewed: true}
	for cursor := ""; ; {
		certs, next, err := a.cfg.Store.ListCertificates(ctx, f, cursor, pageSize)
		if err != nil {
			return fmt.Errorf("alerts: list not-renewed certificates: %w", err)
		}
		for _, c := range certs {
			// A client picks its time inside the window: only once the
			// window is over is a certificate late. One a campaign
			// moved is the campaign's to report, after its grace.
			if _, end := c.RenewalWindow(); now.Before(end) || c.CampaignID != "" {
				continue
			}
			ok, err := a.raise(ctx, seen, acme.Alert{Event: acme.AlertNotRenewed, Serial: c.Serial,
				Identifiers: c.Identifiers, Account: c.AccountID, NotAfter: c.NotAfter, DetectedAt: now})
			if err != nil {
				return err
			}
			if ok {
				queued++
			}
		}
		if cursor = next; cursor == "" {
			break
		}
	}
	campaigns, err := a.cfg.Store.ListCampaigns(ctx)
	if err != nil {
		return fmt.Errorf("alerts: list campaigns: %w", err)
	}
	for _, c := range campaigns {
		if now.Before(c.WindowEnd.Add(a.cfg.CampaignGrace)) {
			continue
		}
		n, err := a.scanCampaign(ctx, seen, c, now)
		if err != nil {
			return err
		}
		queued += n
	}
	a.seen = seen
	if queued > 0 {
		a.log.InfoContext(ctx, "expiry alerts: queued", "alerts", queued, "webhooks", len(a.cfg.Webhooks))
	}
	return nil
}

// scanCampaign raises an alert for each of the campaign's certificates not
// yet replaced (nor expired).
func (a *Alerter) scanCampaign(ctx context.Context, seen map[string]struct{}, c *acme.Campaign, now time.Time) (int, error) {
	queued := 0
	for cursor := ""; ; {
		serials, next, _, err := a.cfg.Store.CampaignPending(ctx, c.ID, cursor, pageSize)
		if err != nil {
			return queued, fmt.Errorf("alerts: campaign %s: pending certificates: %w", c.ID, err)
		}
		for _, serial := range serials {
			key := seenKey(acme.AlertCampaignPending, serial)
			if _, ok := a.seen[key]; ok {
				seen[key] = struct{}{}
				continue
			}
			cert, err := a.cfg.Store.Certificate(ctx, serial)
			if errors.Is(err, storage.ErrNotFound) {
				continue // deleted after its retention since the list was read
			}
			if err != nil {
				return queued, fmt.Errorf("alerts: campaign %s: certificate %s: %w", c.ID, serial, err)
			}
			ok, err := a.raise(ctx, seen, acme.Alert{Event: acme.AlertCampaignPending, Serial: serial,
				Identifiers: cert.Identifiers, Account: cert.AccountID, NotAfter: cert.NotAfter,
				CampaignID: c.ID, DetectedAt: now})
			if err != nil {
				return queued, err
			}
			if ok {
				queued++
			}
		}
		if cursor = next; cursor == "" {
			return queued, nil
		}
	}
}

// raise queues al unless the last scan saw it queued; it reports whether
// it was queued now (the store queues an event for a certificate once
// ever, whoever asks).
func (a *Alerter) raise(ctx context.Context, seen map[string]struct{}, al acme.Alert) (bool, error) {
	key := seenKey(al.Event, al.Serial)
	seen[key] = struct{}{}
	if _, ok := a.seen[key]; ok {
		return false, nil
	}
	queued, err := a.cfg.Store.QueueAlert(ctx, al, a.cfg.Webhooks)
	if err != nil {
		delete(seen, key)
		return false, fmt.Errorf("alerts: queue %s for %s: %w", al.Event, al.Serial, err)
	}
	if queued {
		a.log.InfoContext(ctx, "audit", "event", "alert.raise", "alert", al.Event, "serial", al.Serial,
			"account", al.Account, "identifiers", al.Identifiers, "not_after", al.NotAfter, "campaign", al.CampaignID)
		if a.cfg.Hooks != nil {
			a.cfg.Hooks.Queued(al.Event)
		}
	}
	return queued, nil
}

func seenKey(event, serial string) string { return event + " " + serial }
