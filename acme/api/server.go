// Package api is acmed's HTTP edge: gorilla/mux routes, the JWS and nonce
// checks of RFC 8555 §6, wire types, and the translation of errors into
// problem documents. Handlers decode, call the authority, and render.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

const (
	directoryPath  = "/directory"
	newNoncePath   = "/acme/new-nonce"
	newAccountPath = "/acme/new-account"
	newOrderPath   = "/acme/new-order"
	revokePath     = "/acme/revoke-cert"
	keyChangePath  = "/acme/key-change"
	accountPath    = "/acme/account/"
	orderPath      = "/acme/order/"
	authzPath      = "/acme/authz/"
	challengePath  = "/acme/chall/"
	certPath       = "/acme/cert/"
	// renewalInfoPath is RFC 9773's renewalInfo resource; a certID follows.
	renewalInfoPath = "/acme/renewal-info/"
	rootsPath       = "/roots.pem"
)

// Config wires the API.
type Config struct {
	Authority *authority.Authority
	// BaseURL is the scheme://host[:port] clients use; every URL the server
	// hands out, and every JWS url it accepts, starts with it.
	BaseURL  string
	RootsPEM []byte
	Logger   *slog.Logger
	// Ready reports whether the server can take requests, for /readyz.
	Ready func(context.Context) error

	Website                 string
	TermsOfService          string
	CAAIdentities           []string
	ExternalAccountRequired bool

	// Instrument, when set, wraps the handler of each route, named by its
	// path template (e.g. /acme/order/{id}, never a raw path, which is
	// the client's to choose), once, here; requests no route matches go
	// through the handler it returns for the route "unmatched".
	Instrument func(route string, h http.Handler) http.Handler

	// CRLs serves GET /crl/ISSUER.crl; nil: no such route.
	CRLs CRLSource
	// Alternates gives certificates' alternate chains, served at the
	// certificate URL followed by /1, /2… (alternates.go); nil: none.
	Alternates ChainSource
}

// Server serves the ACME API.
type Server struct {
	auth    *authority.Authority
	baseURL string
	cfg     Config
	log     *slog.Logger
	router  *mux.Router
	keys    keyCache
	// notReady is the last /readyz verdict, so that only changes are logged.
	notReady atomic.Bool
}

// New builds the API handler.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{auth: cfg.Authority, baseURL: strings.TrimSuffix(cfg.BaseURL, "/"), cfg: cfg, log: cfg.Logger}
	r := mux.NewRouter()
	r.Use(s.indexLink)
	r.HandleFunc(directoryPath, s.directory).Methods(http.MethodGet)
	r.HandleFunc(newNoncePath, s.newNonce).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc(rootsPath, s.roots).Methods(http.MethodGet)
	// Any method, so that a POST (an early ARI draft's) is told 405
	// rather than falling through to the POST routes' 404.
	r.HandleFunc(renewalInfoPath+"{certID}", s.renewalInfo)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.HandleFunc("/readyz", s.readyz)
	s.revocationRoutes(r)

	post := r.Methods(http.MethodPost).Subrouter()
	post.Use(s.replayNonce)
	post.HandleFunc(newAccountPath, s.newAccount)
	post.HandleFunc(newOrderPath, s.newOrder)
	post.HandleFunc(revokePath, s.revoke)
	post.HandleFunc(keyChangePath, s.keyChange)
	post.HandleFunc(accountPath+"{id}", s.account)
	post.HandleFunc(accountPath+"{id}/orders", s.accountOrders)
	post.HandleFunc(orderPath+"{id}", s.order)
	post.HandleFunc(orderPath+"{id}/finalize", s.finalize)
	post.HandleFunc(authzPath+"{id}", s.authorization)
	post.HandleFunc(challengePath+"{authz}/{id}", s.challenge)
	post.HandleFunc(certPath+"{serial}", s.certificate)
	post.HandleFunc(certPath+"{serial}/{alt}", s.certificateAlternate)

	r.NotFoundHandler = s.indexLink(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.replayNonceOnPost(w, r)
		s.writeError(w, r, acme.NotFound("no resource at %s", r.URL.Path))
	}))
	r.MethodNotAllowedHandler = s.indexLink(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.replayNonceOnPost(w, r)
		s.writeError(w, r, acme.MethodNotAllowed("method %s is not allowed on %s", r.Method, r.URL.Path))
	}))
	if cfg.Instrument != nil {
		instrument(r, cfg.Instrument)
	}
	s.router = r
	return s
}

// instrument wraps every route's handler, and the router's handlers of
// unmatched requests, with wrap.
func instrument(r *mux.Router, wrap func(route string, h http.Handler) http.Handler) {
	_ = r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tmpl, err := route.GetPathTemplate()
		if h := route.GetHandler(); h != nil && err == nil {
			route.Handler(wrap(tmpl, h))
		}
		return nil
	})
	r.NotFoundHandler = wrap(unmatchedRoute, r.NotFoundHandler)
	r.MethodNotAllowedHandler = wrap(unmatchedRoute, r.MethodNotAllowedHandler)
}

// unmatchedRoute names, for Instrument, requests no route matched.
const unmatchedRoute = "unmatched"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// indexLink puts the directory link on every response (§7.1).
func (s *Server) indexLink(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Link", link(s.baseURL+directoryPath, "index"))
		next.ServeHTTP(w, r)
	})
}

// replayNonce gives every POST response, errors included, a fresh nonce
// (§6.5): clients rely on it to send their next request. A request that
// spent a nonce got its successor with the verdict; any other response
// gets one issued as it is written (no store write: nonces are stateless).
func (s *Server) replayNonce(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&nonceWriter{ResponseWriter: w, s: s, r: r}, r)
	})
}

type nonceWriter struct {
	http.ResponseWriter
	s      *Server
	r      *http.Request
	headed bool
}

func (w *nonceWriter) WriteHeader(code int) {
	if !w.headed {
		w.headed = true
		if w.Header().Get("Replay-Nonce") == "" {
			w.s.setNonce(w.ResponseWriter, w.r)
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *nonceWriter) Write(b []byte) (int, error) {
	if !w.headed {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) replayNonceOnPost(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		s.setNonce(w, r)
	}
}

func (s *Server) setNonce(w http.ResponseWriter, r *http.Request) {
	n, err := s.auth.NewNonce(r.Context())
	if err != nil {
		if clientGone(r, err) {
			s.log.DebugContext(r.Context(), "client went away", "method", r.Method, "path", r.URL.Path, "err", err)
			return
		}
		s.log.ErrorContext(r.Context(), "issue nonce", "err", err)
		return
	}
	w.Header().Set("Replay-Nonce", n)
}

func (s *Server) newNonce(w http.ResponseWriter, r *http.Request) {
	n, err := s.auth.NewNonce(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Replay-Nonce", n)
	w.Header().Set("Cache-Control", "no-store")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) roots(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	_, _ = w.Write(s.cfg.RootsPEM)
}

// readyz answers only "ready" or "not ready": it is on the public
// listener, and the reason (a Redis address, an error) is for operators,
// so it goes to the log, once per change of state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	var err error
	if s.cfg.Ready != nil {
		err = s.cfg.Ready(r.Context())
	}
	s.logReadiness(r.Context(), err)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// logReadiness logs a change between ready and not ready, with the cause.
// A balancer polls /readyz several times a second, so logging every
// answer would flood the log with the same line.
func (s *Server) logReadiness(ctx context.Context, err error) {
	notReady := err != nil
	if s.notReady.Swap(notReady) == notReady {
		return
	}
	if notReady {
		s.log.WarnContext(ctx, "not ready", "err", err)
		return
	}
	s.log.InfoContext(ctx, "ready again")
}

func (s *Server) directory(w http.ResponseWriter, r *http.Request) {
	// --eab required says so itself: the flag and the directory cannot disagree.
	meta := map[string]any{"externalAccountRequired": s.cfg.ExternalAccountRequired || s.cfg.Authority.EABRequired()}
	if s.cfg.Website != "" {
		meta["website"] = s.cfg.Website
	}
	if s.cfg.TermsOfService != "" {
		meta["termsOfService"] = s.cfg.TermsOfService
	}
	if len(s.cfg.CAAIdentities) > 0 {
		meta["caaIdentities"] = s.cfg.CAAIdentities
	}
	// draft-ietf-acme-profiles: name -> description, a plain string, which
	// is all lego's directory type can read.
	meta["profiles"] = s.cfg.Authority.Profiles()
	dir := map[string]any{
		"newNonce":   s.baseURL + newNoncePath,
		"newAccount": s.baseURL + newAccountPath,
		"newOrder":   s.baseURL + newOrderPath,
		"revokeCert": s.baseURL + revokePath,
		"keyChange":  s.baseURL + keyChangePath,
		"meta":       meta,
	}
	if s.auth.ARIEnabled() {
		// RFC 9773 §3: without the trailing slash; clients append
		// "/" and the certID. lego and Caddy send replaces only when
		// the directory lists it.
		dir["renewalInfo"] = s.baseURL + strings.TrimSuffix(renewalInfoPath, "/")
	}
	s.writeJSON(w, http.StatusOK, dir)
}
