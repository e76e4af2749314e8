package api

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// crlPath is where CRLs are served: /crl/ISSUER.crl (package crl).
const crlPath = "/crl/"

// CRLSource is what serves CRLs (crl.Publisher).
type CRLSource interface {
	// CRL returns the latest CRL of issuer; an unknown issuer is a
	// not-found problem.
	CRL(ctx context.Context, issuer string) (*storage.CRL, error)
	// CacheFor is how long an HTTP cache may keep c (max-age), and serve
	// it stale while acmed cannot answer (stale-if-error, RFC 5861).
	CacheFor(c *storage.CRL) (maxAge, staleIfError time.Duration)
}

// revocationRoutes are what relying parties fetch, with no account and
// no JWS: CRLs. They are on the ACME listener and on the plain HTTP one
// of RevocationHandler. (OCSP wraps both: responder.Route.)
func (s *Server) revocationRoutes(r *mux.Router) {
	if s.cfg.CRLs != nil {
		r.HandleFunc(crlPath+"{file}", s.crl).Methods(http.MethodGet, http.MethodHead)
	}
}

// RevocationHandler serves the revocation routes alone, for a listener
// of their own (--crl-listen): relying parties usually fetch CRLs over
// plain HTTP, as they are signed.
func (s *Server) RevocationHandler() http.Handler {
	r := mux.NewRouter()
	s.revocationRoutes(r)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, acme.NotFound("no resource at %s", r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, acme.MethodNotAllowed("method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	if s.cfg.Instrument != nil {
		instrument(r, s.cfg.Instrument)
	}
	return r
}

// crl serves a CRL in DER (RFC 5280 §5, RFC 2585 §3's media type). Caches
// may keep it for CacheFor, and serve it stale while acmed cannot answer
// until its nextUpdate; a conditional GET with its ETag or date is 304.
func (s *Server) crl(w http.ResponseWriter, r *http.Request) {
	issuer, ok := strings.CutSuffix(mux.Vars(r)["file"], ".crl")
	if !ok || issuer == "" {
		w.Header().Set("Cache-Control", "no-store")
		s.writeError(w, r, acme.NotFound("no resource at %s; CRLs are at %sISSUER.crl", r.URL.Path, crlPath))
		return
	}
	c, err := s.cfg.CRLs.CRL(r.Context(), issuer)
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		s.writeError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("ETag", `"`+c.Issuer+"-"+strconv.FormatUint(c.Number, 16)+`"`)
	maxAge, stale := s.cfg.CRLs.CacheFor(c)
	cc := "public, max-age=" + strconv.Itoa(int(maxAge/time.Second))
	if stale >= time.Second {
		cc += ", stale-if-error=" + strconv.Itoa(int(stale/time.Second))
	}
	h.Set("Cache-Control", cc)
	http.ServeContent(w, r, "", c.ThisUpdate, bytes.NewReader(c.DER))
}
