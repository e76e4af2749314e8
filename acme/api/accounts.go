package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/url"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

func (s *Server) newAccount(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needJWK, func(req *request) error {
		var p struct {
			Contact            []string `json:"contact"`
			TermsAgreed        bool     `json:"termsOfServiceAgreed"`
			OnlyReturnExisting bool     `json:"onlyReturnExisting"`
			// Checked by the authority (RFC 8555 §7.3.4).
			ExternalAccountBinding json.RawMessage `json:"externalAccountBinding"`
		}
		if err := decode(req.payload, &p); err != nil {
			return err
		}
		acct, created, err := s.auth.NewAccount(r.Context(), req.jwk, authority.NewAccountRequest{
			Contact: p.Contact, TermsAgreed: p.TermsAgreed, OnlyReturnExisting: p.OnlyReturnExisting,
			ClientIP: clientIP(r), EAB: p.ExternalAccountBinding, URL: req.url,
		})
		if err != nil {
			return err
		}
		w.Header().Set("Location", s.accountURL(acct.ID))
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		s.writeJSON(w, status, s.wireAccount(acct))
		return nil
	})
}

// account serves POST-as-GET, contact updates and deactivation (§7.3.2,
// §7.3.6) of the signing account's own URL.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		if mux.Vars(r)["id"] != req.account.ID {
			return acme.Unauthorized("the account URL is not the signing account's")
		}
		acct := req.account
		if len(req.payload) > 0 {
			var p struct {
				Contact *[]string   `json:"contact"`
				Status  acme.Status `json:"status"`
			}
			if err := decode(req.payload, &p); err != nil {
				return err
			}
			if p.Status != "" && p.Status != acme.StatusDeactivated {
				return acme.Malformed("an account's status can only be set to deactivated")
			}
			var err error
			acct, err = s.auth.UpdateAccount(r.Context(), acct, authority.AccountUpdate{
				Contact: p.Contact, Deactivate: p.Status == acme.StatusDeactivated,
			})
			if err != nil {
				return err
			}
		}
		w.Header().Set("Location", s.accountURL(acct.ID))
		s.writeJSON(w, http.StatusOK, s.wireAccount(acct))
		return nil
	})
}

func (s *Server) accountOrders(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		if mux.Vars(r)["id"] != req.account.ID {
			return acme.Unauthorized("the orders list is not the signing account's")
		}
		if err := postAsGet(req); err != nil {
			return err
		}
		ids, next, err := s.auth.AccountOrders(r.Context(), req.account, r.URL.Query().Get("cursor"))
		if err != nil {
			return err
		}
		urls := make([]string, len(ids))
		for i, id := range ids {
			urls[i] = s.orderURL(id)
		}
		if next != "" {
			w.Header().Add("Link", link(s.accountURL(req.account.ID)+"/orders?cursor="+url.QueryEscape(next), "next"))
		}
		s.writeJSON(w, http.StatusOK, map[string][]string{"orders": urls})
		return nil
	})
}

// keyChange checks the inner JWS of §7.3.5 and rolls the account's key.
func (s *Server) keyChange(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		inner, err := parseJWS(req.payload)
		if err != nil {
			return err
		}
		switch {
		case inner.jwk == nil || inner.header.KID != "":
			return acme.Malformed("inner JWS must be signed with jwk, the new key")
		case inner.header.Nonce != "":
			return acme.Malformed("inner JWS must not have a nonce")
		case inner.header.URL != req.url:
			return acme.Malformed("inner JWS url %q does not match the outer url", inner.header.URL)
		}
		payload, err := inner.verify(inner.jwk)
		if err != nil {
			return err
		}
		var p struct {
			Account string          `json:"account"`
			OldKey  json.RawMessage `json:"oldKey"`
		}
		if err := decode(payload, &p); err != nil {
			return err
		}
		if p.Account != s.accountURL(req.account.ID) {
			return acme.Unauthorized("inner JWS account %q is not the signing account", p.Account)
		}
		var oldKey jose.JSONWebKey
		if err := oldKey.UnmarshalJSON(p.OldKey); err != nil {
			return acme.Malformed("oldKey is not a JWK: %v", err)
		}
		acct, err := s.auth.ChangeKey(r.Context(), req.account, &oldKey, inner.jwk)
		if err != nil {
			return err
		}
		w.Header().Set("Location", s.accountURL(acct.ID))
		s.writeJSON(w, http.StatusOK, s.wireAccount(acct))
		return nil
	})
}

// clientIP is the address of the peer, for new-accounts-per-ip. It is the
// TCP peer, never a header: behind a proxy every client counts as the
// proxy, which a header a client can forge would not make better.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	return host
}
