package admin

import (
	"context"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// eabRoutes:
//
//	POST /admin/v1/eab?name=N&allow=P&prevalidated=P&profile=N&max_validity=D&spiffe_id=U&expires=D&single_use=true
//	                                  create a key; the answer carries its hmac, the only time it is shown
//	GET  /admin/v1/eab                every key
//	GET  /admin/v1/eab/{kid}          one key
//	POST /admin/v1/eab/{kid}/revoke   revoke it: its accounts can order no more
//
// The create parameters are query parameters (repeat allow, prevalidated
// and profile), like every other admin request: no request has a body.
func (s *Server) eabRoutes(api *mux.Router) {
	s.endpoint(api, "/eab", map[string]http.Handler{
		http.MethodGet: s.handle(s.listEAB), http.MethodPost: s.handle(s.createEAB),
	})
	s.endpoint(api, "/eab/{kid}", map[string]http.Handler{http.MethodGet: s.handle(s.showEAB)})
	s.endpoint(api, "/eab/{kid}/revoke", map[string]http.Handler{http.MethodPost: s.handle(s.revokeEAB)})
}

// EABKey is a key as the admin API shows it. HMAC is set only in the
// answer to its creation.
type EABKey struct {
	KID          string     `json:"kid"`
	HMAC         string     `json:"hmac,omitempty"` // base64url, no padding
	Name         string     `json:"name"`
	Allow        []string   `json:"allow"`
	Prevalidated []string   `json:"prevalidated"`
	Profiles     []string   `json:"profiles"`
	MaxValidity  string     `json:"max_validity,omitempty"`
	SPIFFEID     string     `json:"spiffe_id,omitempty"`
	Expires      *time.Time `json:"expires,omitempty"`
	SingleUse    bool       `json:"single_use"`
	Revoked      bool       `json:"revoked"`
	RevokedAt    *time.Time `json:"revoked_at,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	Accounts     []string   `json:"accounts"`
}

// EABKeyList is every key.
type EABKeyList struct {
	Keys []EABKey `json:"keys"`
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func eabView(k *acme.EABKey) EABKey {
	v := EABKey{
		KID: k.KID, Name: k.Name, Allow: nonNil(k.Allow), Prevalidated: nonNil(k.Prevalidated),
		Profiles: nonNil(k.Profiles), SPIFFEID: k.SPIFFEID, Expires: timePtr(k.Expires),
		SingleUse: k.SingleUse, Revoked: k.Revoked, RevokedAt: timePtr(k.RevokedAt),
		CreatedAt: k.CreatedAt.UTC(), Accounts: nonNil(k.Accounts),
	}
	if k.MaxValidity > 0 {
		v.MaxValidity = k.MaxValidity.String()
	}
	return v
}

func (s *Server) createEAB(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	q := r.URL.Query()
	spec := authority.EABKeySpec{
		Name: q.Get("name"), Allow: q["allow"], Prevalidated: q["prevalidated"], Profiles: q["profile"],
		SPIFFEID: q.Get("spiffe_id"),
	}
	for _, d := range []struct {
		param string
		into  *time.Duration
	}{{"max_validity", &spec.MaxValidity}, {"expires", &spec.Expires}} {
		if v := q.Get(d.param); v != "" {
			n, err := time.ParseDuration(v)
			if err != nil || n <= 0 {
				return nil, badRequest(d.param + " " + strconv.Quote(v) + ": not a positive duration (e.g. 720h)")
			}
			*d.into = n
		}
	}
	if v := q.Get("single_use"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, badRequest("single_use " + strconv.Quote(v) + ": not true or false")
		}
		spec.SingleUse = b
	}
	k, err := s.auth.AdminCreateEABKey(ctx, by, spec)
	if err != nil {
		return nil, err
	}
	v := eabView(k)
	v.HMAC = base64.RawURLEncoding.EncodeToString(k.HMAC)
	return v, nil
}

func (s *Server) listEAB(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	keys, err := s.auth.AdminEABKeys(ctx, by)
	if err != nil {
		return nil, err
	}
	out := EABKeyList{Keys: make([]EABKey, 0, len(keys))}
	for _, k := range keys {
		out.Keys = append(out.Keys, eabView(k))
	}
	return out, nil
}

func (s *Server) showEAB(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	k, err := s.auth.AdminEABKey(ctx, by, mux.Vars(r)["kid"])
	if err != nil {
		return nil, err
	}
	return eabView(k), nil
}

func (s *Server) revokeEAB(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	k, err := s.auth.AdminRevokeEABKey(ctx, by, mux.Vars(r)["kid"])
	if err != nil {
		return nil, err
	}
	return eabView(k), nil
}
