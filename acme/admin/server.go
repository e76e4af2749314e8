// Package admin is the HTTP edge of acmed's admin API (DESIGN.md decision
// 10: operators have their own door). It serves JSON under /admin/v1/ on
// a listener of its own, authenticates every request (a bearer token or a
// client certificate) and hands the work, with the caller's name, to the
// authority's admin use cases; it holds no rules of its own.
//
// Each group of endpoints lives in its own file with a routes method
// added by Server.routes (accounts.go, eab.go, certs.go, ...); the HTML
// dashboard (dashboard.go) is served at /admin/, behind the same
// authentication.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage"
)

// Prefix is the path every admin endpoint lives under.
const Prefix = "/admin/v1"

// Config wires the admin API.
type Config struct {
	Authority *authority.Authority
	// Token, when not empty, is accepted as "Authorization: Bearer TOKEN".
	Token string
	// ClientCAs, when set, makes a client certificate the TLS stack
	// verified against them (tls.VerifyClientCertIfGiven) enough to act.
	ClientCAs *x509.CertPool
	Logger    *slog.Logger // nil: slog.Default()
}

// Server is the admin API's handler.
type Server struct {
	auth      *authority.Authority
	tokenHash [sha256.Size]byte
	hasToken  bool
	clientCAs *x509.CertPool
	log       *slog.Logger
	router    *mux.Router
}

// routes adds each file's endpoints; a new group of endpoints is a new
// file and one line here.
func (s *Server) routes(api *mux.Router) {
	s.accountRoutes(api)
	s.backupRoutes(api)
	s.eabRoutes(api)
	s.certRoutes(api)
	s.caRoutes(api)
}

// New returns the admin API; it needs an authority and at least one way
// to authenticate.
func New(cfg Config) (*Server, error) {
	if cfg.Authority == nil {
		return nil, errors.New("admin: Authority is required")
	}
	if cfg.Token == "" && cfg.ClientCAs == nil {
		return nil, errors.New("admin: a token or client CAs are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{auth: cfg.Authority, clientCAs: cfg.ClientCAs, log: cfg.Logger, router: mux.NewRouter()}
	if cfg.Token != "" {
		// Compared as hashes so that the comparison takes the same time
		// whatever the length of what a client sends.
		s.tokenHash, s.hasToken = sha256.Sum256([]byte(cfg.Token)), true
	}
	api := s.router.PathPrefix(Prefix).Subrouter()
	s.routes(api)
	s.dashboardRoutes(s.router)
	s.router.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "no admin endpoint "+r.Method+" "+r.URL.Path)
	})
	return s, nil
}

// ServeHTTP authenticates, then routes. An unauthenticated request learns
// nothing, not even which paths exist.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.caller(r); !ok {
		s.log.WarnContext(r.Context(), "audit", "event", "admin.refused", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer realm="acmed admin"`)
		s.writeError(w, r, http.StatusUnauthorized, "authentication required: a bearer token or a client certificate")
		return
	}
	s.router.ServeHTTP(w, r)
}

// caller names who sent r: "token" for the bearer token, else the subject
// of a client certificate verified against the client CAs.
func (s *Server) caller(r *http.Request) (authority.Operator, bool) {
	if h := r.Header.Get("Authorization"); h != "" && s.hasToken {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
		if ok && subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) == 1 {
			return "token", true
		}
		return "", false // a wrong token is refused, whatever certificate came with it
	}
	if s.clientCAs != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		if name := leaf.Subject.String(); name != "" {
			return authority.Operator("cert:" + name), true
		}
		return authority.Operator("cert:serial=" + leaf.SerialNumber.String()), true
	}
	return "", false
}

// endpoint routes path to one handler per method, and answers any other
// method 405 itself: gorilla/mux's own 405 is lost when a later route of
// the router fails to match the path.
func (s *Server) endpoint(api *mux.Router, path string, methods map[string]http.Handler) {
	allow := make([]string, 0, len(methods))
	for m := range methods {
		allow = append(allow, m)
	}
	sort.Strings(allow)
	api.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
		h, ok := methods[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path+" (allowed: "+strings.Join(allow, ", ")+")")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// handler is an endpoint: it acts for by and returns the value to send as
// JSON with 200, or an error.
type handler func(ctx context.Context, r *http.Request, by authority.Operator) (any, error)

func (s *Server) handle(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		by, _ := s.caller(r) // ServeHTTP let only callers in
		v, err := h(r.Context(), r, by)
		if err != nil {
			status, msg := s.translate(err)
			if status == http.StatusInternalServerError {
				s.log.ErrorContext(r.Context(), "admin request failed", "caller", string(by), "path", r.URL.Path, "err", err)
			}
			s.writeError(w, r, status, msg)
			return
		}
		s.writeJSON(w, http.StatusOK, v)
	}
}

// badRequest is a request the admin API itself finds wrong.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// translate turns an error into a status and a message, in one place: an
// unknown error shows no detail.
func (s *Server) translate(err error) (int, string) {
	var bad badRequest
	switch {
	case errors.As(err, &bad):
		return http.StatusBadRequest, bad.Error()
	case errors.Is(err, authority.ErrBadRequest):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, authority.ErrNoMatch):
		return http.StatusUnprocessableEntity, err.Error()
	case errors.Is(err, authority.ErrNoInventory), errors.Is(err, authority.ErrNoRotation):
		return http.StatusNotImplemented, err.Error()
	case errors.Is(err, storage.ErrNotFound):
		return http.StatusNotFound, "not found: " + strings.TrimPrefix(err.Error(), storage.ErrNotFound.Error()+": ")
	case errors.Is(err, storage.ErrUnavailable):
		return http.StatusServiceUnavailable, "the store is unavailable; try again"
	}
	return http.StatusInternalServerError, "internal error (see acmed's log)"
}

// errorBody is every error response.
type errorBody struct {
	Error string `json:"error"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.writeJSON(w, status, errorBody{Error: msg})
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing left to tell
}
