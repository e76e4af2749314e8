package api

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
)

func (s *Server) authorization(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		id := mux.Vars(r)["id"]
		var az *acme.Authorization
		var err error
		if len(req.payload) == 0 {
			az, err = s.auth.Authorization(r.Context(), req.caller, id)
		} else {
			var p struct {
				Status acme.Status `json:"status"`
			}
			if err := decode(req.payload, &p); err != nil {
				return err
			}
			if p.Status != acme.StatusDeactivated {
				return acme.Malformed("an authorization's status can only be set to deactivated")
			}
			az, err = s.auth.DeactivateAuthorization(r.Context(), req.account, id)
		}
		if err != nil {
			return err
		}
		if az.Status == acme.StatusPending {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		s.writeJSON(w, http.StatusOK, s.wireAuthz(az))
		return nil
	})
}

// challenge serves POST-as-GET and the client's response ({}) of §7.5.1.
func (s *Server) challenge(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		authzID, chID := mux.Vars(r)["authz"], mux.Vars(r)["id"]
		var az *acme.Authorization
		var err error
		if len(req.payload) == 0 {
			az, err = s.auth.Authorization(r.Context(), req.caller, authzID)
		} else {
			var p map[string]any
			if err := decode(req.payload, &p); err != nil {
				return err
			}
			az, err = s.auth.RespondChallenge(r.Context(), req.caller, authzID, chID)
		}
		if err != nil {
			return err
		}
		ch := az.Challenge(chID)
		if ch == nil {
			return acme.NotFound("no such challenge")
		}
		w.Header().Add("Link", link(s.authzURL(az.ID), "up"))
		if ch.Status == acme.StatusProcessing {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		s.writeJSON(w, http.StatusOK, s.wireChallenge(az, ch))
		return nil
	})
}
