package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
)

// wireRenewalInfo is RFC 9773 §4.2's RenewalInfo object.
type wireRenewalInfo struct {
	SuggestedWindow struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL,omitempty"`
}

// renewalInfo answers an unauthenticated GET of a certificate's renewal
// information (RFC 9773 §4.1).
func (s *Server) renewalInfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.replayNonceOnPost(w, r)
		w.Header().Set("Allow", "GET, HEAD")
		s.writeError(w, r, acme.MethodNotAllowed("renewal information is read with an unauthenticated GET (RFC 9773 §4.1), not %s", r.Method))
		return
	}
	info, err := s.auth.RenewalInfo(r.Context(), mux.Vars(r)["certID"])
	if err != nil {
		// A miss is not kept: a certID is asked about again only once
		// the client has a certificate it names.
		w.Header().Set("Cache-Control", "no-store")
		s.writeError(w, r, err)
		return
	}
	var body wireRenewalInfo
	body.SuggestedWindow.Start = info.Start.UTC().Format(time.RFC3339)
	body.SuggestedWindow.End = info.End.UTC().Format(time.RFC3339)
	body.ExplanationURL = info.ExplanationURL
	secs := strconv.Itoa(int(info.RetryAfter / time.Second))
	// Integer seconds: some clients cannot parse an HTTP date.
	w.Header().Set("Retry-After", secs)
	// The answer is the same for anyone who asks (no authentication),
	// so shared caches may keep it, as long as the client is told to
	// wait: a campaign or a revocation then reaches a client behind a
	// cache at most one poll later than one that is not.
	w.Header().Set("Cache-Control", "public, max-age="+secs)
	s.writeJSON(w, http.StatusOK, body)
}
