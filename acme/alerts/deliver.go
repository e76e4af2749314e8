package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Body is the JSON an alert webhook receives (README: Metrics and alerts).
type Body struct {
	// ID is the same for every delivery of one event about one
	// certificate: a receiver that got it before (a replica died between
	// the webhook's 2xx and recording it) can drop the repeat.
	ID          string            `json:"id"`
	Event       string            `json:"event"`
	Serial      string            `json:"serial"`
	Identifiers []acme.Identifier `json:"identifiers"`
	Account     string            `json:"account"`
	NotAfter    time.Time         `json:"not_after"`
	CampaignID  string            `json:"campaign_id,omitempty"`
	DetectedAt  time.Time         `json:"detected_at"`
	// Attempt counts deliveries of this alert to this webhook, from 1.
	Attempt int `json:"attempt"`
}

// BodyOf is the webhook body of a delivery.
func BodyOf(d storage.AlertDelivery) Body {
	al := d.Alert
	return Body{ID: al.Event + "/" + al.Serial, Event: al.Event, Serial: al.Serial, Identifiers: al.Identifiers,
		Account: al.Account, NotAfter: al.NotAfter.UTC(), CampaignID: al.CampaignID, DetectedAt: al.DetectedAt.UTC(),
		Attempt: d.Attempts + 1}
}

// batch is how many due deliveries one store call returns.
const batch = 100

// deliver POSTs every due delivery, while this replica holds the lease. A
// webhook that fails is not tried again in this pass: its other due
// deliveries are put off as if they had failed, without counting an
// attempt, so that one dead webhook neither holds up the others for its
// timeout per alert nor keeps them from being reached.
func (a *Alerter) deliver(ctx context.Context) error {
	failed := map[string]bool{}
	for {
		due, err := a.cfg.Store.DueAlerts(ctx, a.cfg.Now(), batch)
		if err != nil {
			return fmt.Errorf("alerts: due deliveries: %w", err)
		}
		for _, d := range due {
			if failed[d.URL] {
				if err := a.cfg.Store.AlertRetry(ctx, d.ID, a.cfg.Now().Add(a.backoff(max(d.Attempts, 1))), d.Attempts); err != nil {
					return fmt.Errorf("alerts: put off delivery %s: %w", d.ID, err)
				}
				continue
			}
			// Checked before each POST, so that after a pause (a long
			// GC, a partition) this replica does not deliver alongside
			// the one that took over.
			held, err := a.lease(ctx)
			if err != nil || !held {
				return err
			}
			if !a.post(ctx, d) {
				failed[d.URL] = true
			}
		}
		if len(due) < batch || ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// post sends one delivery and records its outcome; it reports whether the
// webhook took it.
func (a *Alerter) post(ctx context.Context, d storage.AlertDelivery) bool {
	body := BodyOf(d)
	status, err := a.send(ctx, d.URL, body)
	attrs := []any{"event", "alert.deliver", "alert", body.Event, "serial", body.Serial, "campaign", body.CampaignID,
		"webhook", redact(d.URL), "attempt", body.Attempt}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	if err == nil {
		if rerr := a.cfg.Store.AlertDelivered(ctx, d.ID); rerr != nil {
			// The webhook has it; the store will hand it out again, and
			// the receiver sees the same id twice.
			a.log.ErrorContext(ctx, "audit", append(attrs, "outcome", "delivered", "err", fmt.Errorf("recording the delivery: %w", rerr))...)
		} else {
			a.log.InfoContext(ctx, "audit", append(attrs, "outcome", "delivered")...)
		}
		a.hook("delivered")
		return true
	}
	next := a.cfg.Now().Add(a.backoff(body.Attempt))
	if rerr := a.cfg.Store.AlertRetry(ctx, d.ID, next, body.Attempt); rerr != nil {
		// Still due: the next pass tries it again.
		err = fmt.Errorf("%w (and recording the retry: %w)", err, rerr)
	}
	a.log.WarnContext(ctx, "audit", append(attrs, "outcome", "retry", "retry_at", next, "err", err)...)
	a.hook("failed")
	return false
}

func (a *Alerter) hook(outcome string) {
	if a.cfg.Hooks != nil {
		a.cfg.Hooks.Delivery(outcome)
	}
}

// send POSTs body to u; a status other than 2xx is an error.
func (a *Alerter) send(ctx context.Context, u string, body Body) (int, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(raw))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "acmed-alerts")
	req.Header.Set("Idempotency-Key", body.ID)
	resp, err := a.cfg.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// backoff is the wait after a delivery's attempt-th failure: RetryMin,
// doubled per further failure, at most RetryMax.
func (a *Alerter) backoff(attempt int) time.Duration {
	d := a.cfg.RetryMin
	for i := 1; i < attempt && d < a.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, a.cfg.RetryMax)
}

// CheckURL refuses a webhook URL that is not absolute http(s); the error
// names the flag.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--alert-webhook %q: want an http:// or https:// URL", redact(raw))
	}
	return nil
}

// redact shows a webhook by scheme and host only: chat services put the
// webhook's secret in its path or query.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}
