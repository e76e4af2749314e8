package authority

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// The certificate estate, for operators: the inventory (list, show) and
// early-renewal campaigns (RFC 9773 windows an operator moves).

// estateStore is a store that keeps the certificate inventory and
// campaigns. It is asserted at call time, like backupStore, so that the
// authority serves everything else on a store without them.
type estateStore interface {
	storage.Inventory
	storage.Campaigns
}

var (
	// ErrNoInventory: the store keeps no certificate inventory.
	ErrNoInventory = errors.New("this store keeps no certificate inventory")
	// ErrNoMatch: an early renewal's filter matched no certificate that
	// can be renewed; no campaign was recorded.
	ErrNoMatch = errors.New("no certificate matches")
)

const (
	// MaxCertsPage bounds one page of AdminCertificates and of a
	// campaign's pending serials.
	MaxCertsPage = 1000
	// CampaignWindow is how long a campaign's renewal window stays open:
	// short, because a client picks a random time inside it, and lego
	// renews at once only for a window that is open and about to close.
	CampaignWindow = time.Minute
)

func (a *Authority) estate(ctx context.Context, event string, by Operator) (estateStore, error) {
	s, ok := a.cfg.Store.(estateStore)
	if !ok {
		a.audit(ctx, event, "caller", string(by), "err", ErrNoInventory)
		return nil, ErrNoInventory
	}
	return s, nil
}

// CertView is a certificate as it stands at the time of the request.
type CertView struct {
	Cert   *acme.Certificate
	Status acme.CertStatus
	// WindowStart and WindowEnd are its renewal window as ARI clients are
	// told it (acme.Certificate.SuggestedWindow: a campaign's, when one
	// moved it).
	WindowStart, WindowEnd time.Time
	// The serials in the canonical form (acme.SerialHex): an older acmed
	// stored them without leading zeros.
	Serial, ReplacedBy, Replaces string
}

func certView(c *acme.Certificate, now time.Time) CertView {
	v := CertView{Cert: c, Status: c.Status(now), Serial: canonical(c.Serial),
		ReplacedBy: canonical(c.ReplacedBy), Replaces: canonical(c.Replaces)}
	v.WindowStart, v.WindowEnd = c.SuggestedWindow(now)
	return v
}

// canonical shows a stored serial, which an older acmed keyed without
// leading zeros, in the one documented form.
func canonical(serial string) string {
	if serial == "" {
		return ""
	}
	if s, ok := acme.NormalizeSerial(serial); ok {
		return s
	}
	return serial
}

// ParseSerial reads a serial as an operator pastes it: hex in any case,
// leading zeros and colons optional, and openssl's "serial=" prefix.
func ParseSerial(s string) (string, error) {
	in := strings.TrimSpace(s)
	if len(in) >= 7 && strings.EqualFold(in[:7], "serial=") {
		in = in[7:]
	}
	c, ok := acme.NormalizeSerial(in)
	if !ok {
		return "", fmt.Errorf("%w: serial %q: want hex as openssl prints it (e.g. 04A3F1...; case, colons and leading zeros do not matter)", ErrBadRequest, s)
	}
	return c, nil
}

// sanSuffix is a --san-suffix as the store compares it: lower case, with
// no leading "*." or "." and no trailing dot.
func sanSuffix(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(strings.TrimPrefix(s, "*"), ".")
	return strings.TrimSuffix(s, ".")
}

// AdminCertificates returns a page of the inventory matching f (its Now
// is set here), ordered by notAfter, and the next page's cursor.
func (a *Authority) AdminCertificates(ctx context.Context, by Operator, f storage.CertFilter, cursor string, limit int) ([]CertView, string, error) {
	const event = "admin.certs.list"
	if limit <= 0 || limit > MaxCertsPage {
		return nil, "", fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadRequest, limit, MaxCertsPage)
	}
	switch f.Status {
	case "", acme.CertValid, acme.CertRevoked, acme.CertExpired:
	default:
		return nil, "", fmt.Errorf("%w: status %q: want valid, revoked or expired", ErrBadRequest, f.Status)
	}
	if f.ExpiringWithin < 0 {
		return nil, "", fmt.Errorf("%w: expiring_within %s: must be positive", ErrBadRequest, f.ExpiringWithin)
	}
	f.SANSuffix = sanSuffix(f.SANSuffix)
	s, err := a.estate(ctx, event, by)
	if err != nil {
		return nil, "", err
	}
	now := a.now()
	f.Now = now
	certs, next, err := s.ListCertificates(ctx, f, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	out := make([]CertView, len(certs))
	for i, c := range certs {
		out[i] = certView(c, now)
	}
	a.audit(ctx, event, "caller", string(by), "filter", describeFilter(f), "cursor", cursor, "count", len(out))
	return out, next, nil
}

// AdminCertificate returns one certificate by serial, in any form
// ParseSerial reads; an unknown one is storage.ErrNotFound.
func (a *Authority) AdminCertificate(ctx context.Context, by Operator, serial string) (CertView, error) {
	s, err := ParseSerial(serial)
	if err != nil {
		return CertView{}, err
	}
	c, err := a.certificateBySerial(ctx, s)
	if errors.Is(err, storage.ErrNotFound) {
		return CertView{}, fmt.Errorf("%w: certificate %s", storage.ErrNotFound, s)
	}
	if err != nil {
		return CertView{}, err
	}
	a.audit(ctx, "admin.certs.show", "caller", string(by), "serial", s)
	return certView(c, a.now()), nil
}

// RenewEarlySpec is what an operator selects for an early renewal; the
// set fields must all hold, and at least one must be set.
type RenewEarlySpec struct {
	Serials      []string // any form ParseSerial reads
	IssuedBefore time.Time
	SANSuffix    string
	Profile      string
	Account      string
	// ExplanationURL, when set, is given to clients with the window
	// (RFC 9773 explanationURL).
	ExplanationURL string
}

func (s RenewEarlySpec) filter(now time.Time) (storage.CertFilter, error) {
	f := storage.CertFilter{Now: now, IssuedBefore: s.IssuedBefore, SANSuffix: sanSuffix(s.SANSuffix),
		Profile: s.Profile, Account: s.Account}
	for _, in := range s.Serials {
		c, err := ParseSerial(in)
		if err != nil {
			return f, err
		}
		// A certificate an older acmed stored is keyed by the legacy form;
		// a certificate has one key, so asking for both matches it once.
		f.Serials = append(f.Serials, c)
		if l := acme.LegacySerial(c); l != c {
			f.Serials = append(f.Serials, l)
		}
	}
	if len(f.Serials) == 0 && f.IssuedBefore.IsZero() && f.SANSuffix == "" && f.Profile == "" && f.Account == "" {
		// Renewing the whole estate at once is never one missing flag away.
		return f, fmt.Errorf("%w: no filter: give serials, issued_before, san_suffix, profile or account", ErrBadRequest)
	}
	if strings.TrimSpace(s.SANSuffix) != "" && f.SANSuffix == "" {
		return f, fmt.Errorf("%w: san_suffix %q: names no domain", ErrBadRequest, s.SANSuffix)
	}
	if s.ExplanationURL != "" {
		u, err := url.Parse(s.ExplanationURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return f, fmt.Errorf("%w: explanation_url %q: want an absolute http(s) URL", ErrBadRequest, s.ExplanationURL)
		}
	}
	return f, nil
}

// AdminRenewEarly starts a campaign: every matching certificate that is
// unexpired, not revoked and not replaced gets the campaign's renewal
// window, so ARI clients renew at their next check. The window opens a
// second from now and closes CampaignWindow after now. Only certificates
// issued before it opens are matched (notBefore < start; an x509 time has
// whole seconds, so that is every certificate issued until now): cert-
// manager ignores a window that does not start after notBefore, and one
// issued since is already new. Matching nothing is ErrNoMatch and records
// nothing.
func (a *Authority) AdminRenewEarly(ctx context.Context, by Operator, spec RenewEarlySpec) (*acme.Campaign, error) {
	const event = "admin.campaign.create"
	now := a.now()
	f, err := spec.filter(now)
	if err != nil {
		a.audit(ctx, event, "caller", string(by), "err", err)
		return nil, err
	}
	s, err := a.estate(ctx, event, by)
	if err != nil {
		return nil, err
	}
	id, err := a.newKID()
	if err != nil {
		return nil, err
	}
	c := &acme.Campaign{
		ID: id, CreatedAt: now, CreatedBy: string(by), Filter: describeFilter(f),
		ExplanationURL: spec.ExplanationURL, WindowStart: now.Add(time.Second), WindowEnd: now.Add(CampaignWindow),
	}
	if f.IssuedBefore.IsZero() || f.IssuedBefore.After(c.WindowStart) {
		f.IssuedBefore = c.WindowStart
	}
	n, err := s.CreateCampaign(ctx, c, f)
	if err != nil {
		a.audit(ctx, event, "caller", string(by), "filter", c.Filter, "err", err)
		return nil, err
	}
	if n == 0 {
		a.audit(ctx, event, "caller", string(by), "filter", c.Filter, "matched", 0)
		return nil, fmt.Errorf("%w %s (unexpired, not revoked, not replaced): no campaign was started", ErrNoMatch, c.Filter)
	}
	c.Matched = n
	a.audit(ctx, event, "caller", string(by), "campaign", c.ID, "filter", c.Filter, "matched", n,
		"window_start", c.WindowStart, "window_end", c.WindowEnd, "explanation_url", c.ExplanationURL)
	return c, nil
}

// CampaignStatus is a campaign with its progress: Pending certificates
// are neither replaced nor expired yet, Replaced = Matched - Pending.
type CampaignStatus struct {
	*acme.Campaign
	Pending, Replaced int
	PendingSerials    []string // a page of them, for AdminCampaign
	Next              string   // the cursor of the next page
}

func (a *Authority) campaignStatus(ctx context.Context, s estateStore, c *acme.Campaign, cursor string, limit int) (CampaignStatus, error) {
	serials, next, pending, err := s.CampaignPending(ctx, c.ID, cursor, limit)
	if err != nil {
		return CampaignStatus{}, err
	}
	for i := range serials {
		serials[i] = canonical(serials[i])
	}
	if serials == nil {
		serials = []string{}
	}
	return CampaignStatus{Campaign: c, Pending: pending, Replaced: max(c.Matched-pending, 0), PendingSerials: serials, Next: next}, nil
}

// AdminCampaign returns a campaign with a page of its pending serials; an
// unknown one is storage.ErrNotFound.
func (a *Authority) AdminCampaign(ctx context.Context, by Operator, id, cursor string, limit int) (CampaignStatus, error) {
	const event = "admin.campaign.show"
	if limit <= 0 || limit > MaxCertsPage {
		return CampaignStatus{}, fmt.Errorf("%w: limit %d: want 1 to %d", ErrBadRequest, limit, MaxCertsPage)
	}
	s, err := a.estate(ctx, event, by)
	if err != nil {
		return CampaignStatus{}, err
	}
	c, err := s.Campaign(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return CampaignStatus{}, fmt.Errorf("%w: campaign %s", storage.ErrNotFound, id)
	}
	if err != nil {
		return CampaignStatus{}, err
	}
	st, err := a.campaignStatus(ctx, s, c, cursor, limit)
	if err != nil {
		return CampaignStatus{}, err
	}
	a.audit(ctx, event, "caller", string(by), "campaign", id, "pending", st.Pending)
	return st, nil
}

// AdminCampaigns returns every campaign with its progress, newest first
// (without pending serials).
func (a *Authority) AdminCampaigns(ctx context.Context, by Operator) ([]CampaignStatus, error) {
	const event = "admin.campaign.list"
	s, err := a.estate(ctx, event, by)
	if err != nil {
		return nil, err
	}
	out, err := a.campaigns(ctx, s)
	if err != nil {
		return nil, err
	}
	a.audit(ctx, event, "caller", string(by), "count", len(out))
	return out, nil
}

func (a *Authority) campaigns(ctx context.Context, s estateStore) ([]CampaignStatus, error) {
	cs, err := s.ListCampaigns(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]CampaignStatus, 0, len(cs))
	for _, c := range cs {
		st, err := a.campaignStatus(ctx, s, c, "", 1)
		if err != nil {
			return nil, err
		}
		st.PendingSerials, st.Next = nil, ""
		out = append(out, st)
	}
	return out, nil
}

// describeFilter is a filter in the CLI's words, for audit records and
// a campaign's Filter.
func describeFilter(f storage.CertFilter) string {
	var parts []string
	add := func(flag, v string) { parts = append(parts, "--"+flag+" "+v) }
	const shown = 5
	var serials []string
	for _, s := range f.Serials {
		if c := canonical(s); !slices.Contains(serials, c) {
			serials = append(serials, c)
		}
	}
	for i, s := range serials {
		if i == shown {
			parts = append(parts, fmt.Sprintf("(and %d more serials)", len(serials)-shown))
			break
		}
		add("serial", s)
	}
	if !f.IssuedBefore.IsZero() {
		add("issued-before", f.IssuedBefore.UTC().Format(time.RFC3339))
	}
	if f.Status != "" {
		add("status", string(f.Status))
	}
	if f.ExpiringWithin > 0 {
		add("expiring-within", f.ExpiringWithin.String())
	}
	if f.NotRenewed {
		parts = append(parts, "--not-renewed")
	}
	for _, kv := range [][2]string{{"san-suffix", f.SANSuffix}, {"profile", f.Profile}, {"account", f.Account}} {
		if kv[1] != "" {
			add(kv[0], kv[1])
		}
	}
	if len(parts) == 0 {
		return "(all)"
	}
	return strings.Join(parts, " ")
}
