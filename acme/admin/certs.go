package admin

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// certRoutes:
//
//	GET  /admin/v1/certs?expiring_within=D&not_renewed=true&san_suffix=S&account=ID&profile=N&status=S&limit=N&cursor=C
//	                                  a page of the inventory, soonest notAfter first
//	GET  /admin/v1/certs/{serial}     one certificate (serial as openssl prints it)
//	POST /admin/v1/campaigns?serial=S&issued_before=T&san_suffix=S&profile=N&account=ID&explanation_url=U
//	                                  start an early renewal (repeat serial); at least one filter
//	GET  /admin/v1/campaigns          every campaign with its progress, newest first
//	GET  /admin/v1/campaigns/{id}?limit=N&cursor=C
//	                                  one campaign with a page of its pending serials
//
// A parameter these endpoints do not know is refused rather than
// ignored: a misspelt filter would otherwise widen a campaign.
func (s *Server) certRoutes(api *mux.Router) {
	s.endpoint(api, "/certs", map[string]http.Handler{http.MethodGet: s.handle(s.listCerts)})
	s.endpoint(api, "/certs/{serial}", map[string]http.Handler{http.MethodGet: s.handle(s.showCert)})
	s.endpoint(api, "/campaigns", map[string]http.Handler{
		http.MethodGet: s.handle(s.listCampaigns), http.MethodPost: s.handle(s.createCampaign),
	})
	s.endpoint(api, "/campaigns/{id}", map[string]http.Handler{http.MethodGet: s.handle(s.showCampaign)})
}

// Certificate is a certificate as the admin API shows it. Serials are in
// acme.SerialHex form (lower-case hex, even length); EABKey and
// ReplacedBy are "" when there is none.
type Certificate struct {
	Serial        string            `json:"serial"`
	Identifiers   []acme.Identifier `json:"identifiers"`
	Account       string            `json:"account"`
	EABKey        string            `json:"eab_key"`
	Profile       string            `json:"profile"`
	NotBefore     time.Time         `json:"not_before"`
	NotAfter      time.Time         `json:"not_after"`
	Status        acme.CertStatus   `json:"status"`
	ReplacedBy    string            `json:"replaced_by"`
	RenewalWindow Window            `json:"renewal_window"`
	Replaces      string            `json:"replaces,omitempty"`
	Campaign      string            `json:"campaign,omitempty"` // the campaign that moved its window
	RevokedAt     *time.Time        `json:"revoked_at,omitempty"`
}

// Window is a renewal window (RFC 9773 suggestedWindow).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// CertificateList is a page of certificates; Next, when not empty, is the
// cursor of the next page.
type CertificateList struct {
	Certificates []Certificate `json:"certificates"`
	Next         string        `json:"next,omitempty"`
}

// DefaultCertsPage is the page size when the request names none.
const DefaultCertsPage = 100

func certView(v authority.CertView) Certificate {
	c := v.Cert
	ids := c.Identifiers
	if ids == nil {
		ids = []acme.Identifier{}
	}
	return Certificate{
		Serial: v.Serial, Identifiers: ids, Account: c.AccountID, EABKey: c.EABKeyName, Profile: c.Profile,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Status: v.Status, ReplacedBy: v.ReplacedBy,
		RenewalWindow: Window{Start: v.WindowStart.UTC(), End: v.WindowEnd.UTC()},
		Replaces:      v.Replaces, Campaign: c.CampaignID, RevokedAt: timePtr(c.RevokedAt),
	}
}

// onlyParams refuses a query parameter outside known.
func onlyParams(q url.Values, known ...string) error {
	var unknown []string
	for k := range q {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return badRequest("unknown parameter(s) " + strings.Join(unknown, ", ") + " (known: " + strings.Join(known, ", ") + ")")
}

// pageLimit reads the limit parameter, def when absent.
func pageLimit(q url.Values, def int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, badRequest("limit " + strconv.Quote(v) + ": not a number")
	}
	return n, nil
}

func (s *Server) listCerts(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "expiring_within", "not_renewed", "san_suffix", "account", "profile", "status", "limit", "cursor"); err != nil {
		return nil, err
	}
	limit, err := pageLimit(q, DefaultCertsPage)
	if err != nil {
		return nil, err
	}
	f := storage.CertFilter{SANSuffix: q.Get("san_suffix"), Account: q.Get("account"), Profile: q.Get("profile"),
		Status: acme.CertStatus(q.Get("status"))}
	if v := q.Get("expiring_within"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, badRequest("expiring_within " + strconv.Quote(v) + ": not a positive duration (e.g. 168h)")
		}
		f.ExpiringWithin = d
	}
	if v := q.Get("not_renewed"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("not_renewed " + strconv.Quote(v) + ": not true or false")
		}
		f.NotRenewed = b
	}
	certs, next, err := s.auth.AdminCertificates(ctx, by, f, q.Get("cursor"), limit)
	if err != nil {
		return nil, err
	}
	out := CertificateList{Certificates: make([]Certificate, 0, len(certs)), Next: next}
	for _, c := range certs {
		out.Certificates = append(out.Certificates, certView(c))
	}
	return out, nil
}

func (s *Server) showCert(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	c, err := s.auth.AdminCertificate(ctx, by, mux.Vars(r)["serial"])
	if err != nil {
		return nil, err
	}
	return certView(c), nil
}

// Campaign is an early renewal as the admin API shows it. Pending counts
// the certificates neither replaced nor expired yet; Replaced is
// Matched - Pending.
type Campaign struct {
	ID             string    `json:"id"`
	CreatedAt      time.Time `json:"created_at"`
	CreatedBy      string    `json:"created_by"`
	Filter         string    `json:"filter"`
	ExplanationURL string    `json:"explanation_url,omitempty"`
	Window         Window    `json:"window"`
	Matched        int       `json:"matched"`
	Replaced       int       `json:"replaced"`
	Pending        int       `json:"pending"`
}

// CampaignDetail is one campaign with a page of its pending serials;
// Next, when not empty, is the cursor of the next page.
type CampaignDetail struct {
	Campaign
	PendingSerials []string `json:"pending_serials"`
	Next           string   `json:"next,omitempty"`
}

// CampaignList is every campaign.
type CampaignList struct {
	Campaigns []Campaign `json:"campaigns"`
}

func campaignView(st authority.CampaignStatus) Campaign {
	c := st.Campaign
	return Campaign{
		ID: c.ID, CreatedAt: c.CreatedAt.UTC(), CreatedBy: c.CreatedBy, Filter: c.Filter, ExplanationURL: c.ExplanationURL,
		Window:  Window{Start: c.WindowStart.UTC(), End: c.WindowEnd.UTC()},
		Matched: c.Matched, Replaced: st.Replaced, Pending: st.Pending,
	}
}

func (s *Server) createCampaign(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "serial", "issued_before", "san_suffix", "profile", "account", "explanation_url"); err != nil {
		return nil, err
	}
	spec := authority.RenewEarlySpec{Serials: q["serial"], SANSuffix: q.Get("san_suffix"), Profile: q.Get("profile"),
		Account: q.Get("account"), ExplanationURL: q.Get("explanation_url")}
	if v := q.Get("issued_before"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, badRequest("issued_before " + strconv.Quote(v) + ": not an RFC 3339 time (e.g. 2025-06-01T00:00:00Z)")
		}
		spec.IssuedBefore = t
	}
	c, err := s.auth.AdminRenewEarly(ctx, by, spec)
	if err != nil {
		return nil, err
	}
	return campaignView(authority.CampaignStatus{Campaign: c, Pending: c.Matched}), nil
}

func (s *Server) listCampaigns(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	cs, err := s.auth.AdminCampaigns(ctx, by)
	if err != nil {
		return nil, err
	}
	out := CampaignList{Campaigns: make([]Campaign, 0, len(cs))}
	for _, c := range cs {
		out.Campaigns = append(out.Campaigns, campaignView(c))
	}
	return out, nil
}

func (s *Server) showCampaign(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	q := r.URL.Query()
	if err := onlyParams(q, "limit", "cursor"); err != nil {
		return nil, err
	}
	limit, err := pageLimit(q, authority.MaxCertsPage)
	if err != nil {
		return nil, err
	}
	st, err := s.auth.AdminCampaign(ctx, by, mux.Vars(r)["id"], q.Get("cursor"), limit)
	if err != nil {
		return nil, err
	}
	v := CampaignDetail{Campaign: campaignView(st), PendingSerials: st.PendingSerials, Next: st.Next}
	if v.PendingSerials == nil {
		v.PendingSerials = []string{}
	}
	return v, nil
}
