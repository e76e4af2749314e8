package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// retryAfter is the polling interval suggested while work is in progress,
// in whole seconds: some clients cannot parse an HTTP date.
const retryAfter = 1

func link(url, rel string) string { return "<" + url + ">;rel=\"" + rel + "\"" }

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	s.write(w, body)
}

// write sends a response body. It fails only when the client hung up (a
// broken pipe, a reset), which is logged at debug: that is the client's
// business, not an operator's.
func (s *Server) write(w http.ResponseWriter, body []byte) {
	if _, err := w.Write(body); err != nil {
		s.log.Debug("client went away while the response was written", "err", err)
	}
}

// writeError translates any error into a problem document, once, here
// (DESIGN.md decision 7). Unknown errors are logged and shown as
// serverInternal without detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var prob *acme.Problem
	var inUse *authority.KeyInUseError
	switch {
	case errors.As(err, &prob):
		if prob.RetryAfter > 0 {
			// Whole seconds, rounded up: a client retrying on time is allowed.
			w.Header().Set("Retry-After", strconv.Itoa(int((prob.RetryAfter+time.Second-1)/time.Second)))
		}
	case clientGone(r, err):
		// Whatever is written goes nowhere; the answer is still a
		// problem, as a client never gets an unknown error's detail.
		s.log.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "err", err)
		prob = acme.ServerInternal("request canceled")
	case errors.As(err, &inUse):
		w.Header().Set("Location", s.baseURL+accountPath+inUse.AccountID)
		prob = acme.Conflict("the new key is already in use by another account")
	case errors.Is(err, storage.ErrUnavailable):
		what := "store unavailable"
		if errors.Is(err, ca.ErrUnavailable) {
			// The authority answers a failed signature like an outage of
			// the store; the log says which it was.
			what = "CA signer unavailable"
		}
		s.log.ErrorContext(r.Context(), what, "method", r.Method, "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		prob = acme.Unavailable("the service is temporarily unavailable; retry shortly")
	case errors.Is(err, storage.ErrNotFound):
		// The authority names what is missing; a miss that reaches here
		// untranslated is still a missing resource, never a 500.
		s.log.WarnContext(r.Context(), "untranslated not-found", "method", r.Method, "path", r.URL.Path, "err", err)
		prob = acme.NotFound("resource not found")
	default:
		s.log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		prob = acme.ServerInternal("internal error")
	}
	body, _ := json.Marshal(prob)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(prob.Status)
	s.write(w, body)
}
