package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// accountRoutes:
//
//	GET  /admin/v1/accounts?cursor=C&limit=N  a page of accounts, oldest ID first
//	GET  /admin/v1/accounts/{id}              one account
//	POST /admin/v1/accounts/{id}/deactivate   deactivate it for good (RFC 8555 §7.3.6)
func (s *Server) accountRoutes(api *mux.Router) {
	s.endpoint(api, "/accounts", map[string]http.Handler{http.MethodGet: s.handle(s.listAccounts)})
	s.endpoint(api, "/accounts/{id}", map[string]http.Handler{http.MethodGet: s.handle(s.showAccount)})
	s.endpoint(api, "/accounts/{id}/deactivate", map[string]http.Handler{http.MethodPost: s.handle(s.deactivateAccount)})
}

// Account is an account as the admin API shows it.
type Account struct {
	ID            string    `json:"id"`
	Status        string    `json:"status"`
	Contact       []string  `json:"contact"`
	KeyThumbprint string    `json:"key_thumbprint"`
	TermsAgreed   bool      `json:"terms_agreed"`
	CreatedAt     time.Time `json:"created_at"`
	EABKID        string    `json:"eab_kid,omitempty"` // the EAB key it is bound to
}

// AccountList is a page of accounts; Next, when not empty, is the cursor
// of the next page.
type AccountList struct {
	Accounts []Account `json:"accounts"`
	Next     string    `json:"next,omitempty"`
}

// DefaultAccountsPage is the page size when the request names none.
const DefaultAccountsPage = 100

func accountView(a *acme.Account) Account {
	contact := a.Contact
	if contact == nil {
		contact = []string{}
	}
	return Account{
		ID: a.ID, Status: string(a.Status), Contact: contact, KeyThumbprint: a.KeyThumbprint,
		TermsAgreed: a.TermsAgreed, CreatedAt: a.CreatedAt.UTC(), EABKID: a.EABKID,
	}
}

func (s *Server) listAccounts(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	limit, err := pageLimit(r.URL.Query(), DefaultAccountsPage)
	if err != nil {
		return nil, err
	}
	accts, next, err := s.auth.ListAccounts(ctx, by, r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return nil, err
	}
	out := AccountList{Accounts: make([]Account, 0, len(accts)), Next: next}
	for _, a := range accts {
		out.Accounts = append(out.Accounts, accountView(a))
	}
	return out, nil
}

func (s *Server) showAccount(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	a, err := s.auth.AdminAccount(ctx, by, mux.Vars(r)["id"])
	if err != nil {
		return nil, err
	}
	return accountView(a), nil
}

func (s *Server) deactivateAccount(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	a, err := s.auth.AdminDeactivateAccount(ctx, by, mux.Vars(r)["id"])
	if err != nil {
		return nil, err
	}
	return accountView(a), nil
}
