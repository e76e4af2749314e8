package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/storage"
)

// checkCRLFlags checks --crl-base-url, --crl-refresh and --crl-validity
// (config.check).
func (c config) checkCRLFlags() error {
	if c.CRLBaseURL != "" {
		u, err := url.Parse(c.CRLBaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return fmt.Errorf("--crl-base-url %q: want http://HOST[:PORT][/PATH] (or https), no query", c.CRLBaseURL)
		}
	}
	if c.CRLRefresh < time.Second {
		return fmt.Errorf("--crl-refresh %s: must be at least 1s", c.CRLRefresh)
	}
	if c.CRLValidity < 2*c.CRLRefresh || c.CRLValidity < time.Minute {
		return fmt.Errorf("--crl-validity %s: must be at least 1m and twice --crl-refresh (%s)", c.CRLValidity, c.CRLRefresh)
	}
	return nil
}

// crlBase is where CRLs are published: --crl-base-url, or else the
// external URL.
func crlBase(c config, base *url.URL) string {
	if c.CRLBaseURL != "" {
		return c.CRLBaseURL
	}
	return base.String()
}

// newCRLPublisher builds the CRL publishers of the CA's issuers (the
// active intermediate and the retired ones, which rotations add),
// publishing under crlBase.
func newCRLPublisher(c config, store storage.Store, is *issuers, base *url.URL, log *slog.Logger) (*crl.Set, error) {
	s, ok := store.(crl.Store)
	if !ok {
		return nil, errors.New("CRLs: this store keeps no certificate inventory to list revocations from")
	}
	holder, err := replicaID(c.ReplicaName)
	if err != nil {
		return nil, err
	}
	return crl.NewSet(crl.Config{Store: s, BaseURL: crlBase(c, base), Validity: c.CRLValidity,
		Refresh: c.CRLRefresh, Holder: holder, Logger: log}, is.crlIssuers)
}

// runCRL builds CRLs in the background until the returned stop is called.
func runCRL(p *crl.Set) (stop func()) {
	return runBackground(func(ctx context.Context) { _ = p.Run(ctx) })
}

// runBackground runs f until the returned stop is called, which waits
// for it to return.
func runBackground(f func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// revocationServer is --crl-listen's plain HTTP listener.
type revocationServer struct {
	srv *http.Server
	url string
}

// serveRevocation serves h (CRLs and OCSP) over plain HTTP on
// --crl-listen: what it serves is signed, and relying parties usually
// fetch it without TLS (RFC 5280 §4.2.1.13, RFC 6960 Appendix A). It
// returns nil when the flag is not set.
func serveRevocation(addr string, h http.Handler, log *slog.Logger) (*revocationServer, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--crl-listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { _ = srv.Serve(ln) }()
	return &revocationServer{srv: srv, url: "http://" + ln.Addr().String()}, nil
}

// stop lets requests in flight finish for up to timeout; a nil server
// is no error.
func (r *revocationServer) stop(timeout time.Duration) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close()
	}
}
