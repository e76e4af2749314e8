package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"syscall"

	"github.com/acmed/acmed/acme"
)

// decode reads a JSON payload. RFC 8555 §7 requires an object wherever a
// payload is not empty, so anything else (null, an array, a string, a
// number) is malformed, as is an object of the wrong shape. A bare null
// would otherwise decode into a zero request without error.
func decode(payload []byte, v any) error {
	trimmed := bytes.TrimLeft(payload, " \t\r\n")
	if len(trimmed) == 0 {
		return acme.Malformed("payload must be a JSON object, not empty")
	}
	if trimmed[0] != '{' {
		return acme.Malformed("payload must be a JSON object, not %s", jsonKind(trimmed[0]))
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return acme.Malformed("payload is not valid for this request: %v", err)
	}
	return nil
}

// jsonKind names the JSON value that starts with c, for a problem detail.
func jsonKind(c byte) string {
	switch c {
	case 'n':
		return "null"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return "a number"
	}
	return "valid JSON"
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

// clientGone reports whether err comes from the client hanging up: the
// request's context ended (net/http cancels it when the connection
// closes), or the connection broke under a read or a write. That is the
// client's business, not an operator's: it logs at debug, never as an
// error.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil || errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}
