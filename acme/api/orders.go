package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

func (s *Server) newOrder(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		var p struct {
			Identifiers []acme.Identifier `json:"identifiers"`
			NotBefore   *time.Time        `json:"notBefore"`
			NotAfter    *time.Time        `json:"notAfter"`
			Profile     string            `json:"profile"`
			Replaces    string            `json:"replaces"`
		}
		if err := decode(req.payload, &p); err != nil {
			return err
		}
		nr := authority.NewOrderRequest{Identifiers: p.Identifiers, Profile: p.Profile, Replaces: p.Replaces}
		if p.NotBefore != nil {
			nr.NotBefore = *p.NotBefore
		}
		if p.NotAfter != nil {
			nr.NotAfter = *p.NotAfter
		}
		o, err := s.auth.NewOrder(r.Context(), req.account, nr)
		if err != nil {
			return err
		}
		w.Header().Set("Location", s.orderURL(o.ID))
		s.writeJSON(w, http.StatusCreated, s.wireOrder(o))
		return nil
	})
}

func (s *Server) order(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		if err := postAsGet(req); err != nil {
			return err
		}
		o, err := s.auth.Order(r.Context(), req.caller, mux.Vars(r)["id"])
		if err != nil {
			return err
		}
		s.writeOrder(w, o)
		return nil
	})
}

func (s *Server) finalize(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		var p struct {
			CSR string `json:"csr"`
		}
		if err := decode(req.payload, &p); err != nil {
			return err
		}
		der, err := base64.RawURLEncoding.DecodeString(p.CSR)
		if err != nil || len(der) == 0 {
			return acme.BadCSR("csr must be base64url-encoded DER")
		}
		o, err := s.auth.Finalize(r.Context(), req.caller, mux.Vars(r)["id"], der)
		if err != nil {
			return err
		}
		s.writeOrder(w, o)
		return nil
	})
}

// writeOrder renders an order with Location (cert-manager polls that URL
// after finalize) and Retry-After while the client must wait.
func (s *Server) writeOrder(w http.ResponseWriter, o *authority.Order) {
	w.Header().Set("Location", s.orderURL(o.ID))
	if o.Status == acme.StatusProcessing || o.Status == acme.StatusPending {
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	}
	s.writeJSON(w, http.StatusOK, s.wireOrder(o))
}

func (s *Server) certificate(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		if err := postAsGet(req); err != nil {
			return err
		}
		c, err := s.auth.Certificate(r.Context(), req.caller, mux.Vars(r)["serial"])
		if err != nil {
			return err
		}
		s.chainLinks(w, c, 0, len(s.alternates(c)))
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		_, _ = w.Write(c.ChainPEM)
		return nil
	})
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, eitherKey, func(req *request) error {
		var p struct {
			Certificate string `json:"certificate"`
			Reason      *int   `json:"reason"`
		}
		if err := decode(req.payload, &p); err != nil {
			return err
		}
		der, err := base64.RawURLEncoding.DecodeString(p.Certificate)
		if err != nil || len(der) == 0 {
			return acme.Malformed("certificate must be base64url-encoded DER")
		}
		rr := authority.RevokeRequest{CertDER: der, Account: req.account}
		if req.account == nil {
			rr.Key = req.jwk
		}
		if p.Reason != nil {
			rr.Reason = *p.Reason
		}
		if err := s.auth.Revoke(r.Context(), rr); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	})
}
