package api

import (
	"encoding/json"
	"net/http"

	"github.com/acmed/acmed/acme"
)

// decode reads a JSON payload; anything that is not a JSON object of the
// expected shape is malformed.
func decode(payload []byte, v any) error {
	if len(payload) == 0 {
		return acme.Malformed("payload must be a JSON object, not empty")
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return acme.Malformed("payload is not valid for this request: %v", err)
	}
	return nil
}

// postAsGet refuses a payload where §6.3 requires the empty one.
func postAsGet(req *request) error {
	if len(req.payload) != 0 {
		return acme.Malformed("POST-as-GET requires an empty payload")
	}
	return nil
}

// handle runs the common shape of every POST handler: authenticate, then
// serve, translating any error into a problem.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, rule keyRule, serve func(*request) error) {
	req, err := s.authenticate(r.Context(), w, r, rule)
	if err == nil {
		err = serve(req)
	}
	if err != nil {
		s.writeError(w, r, err)
	}
}
