package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// errDraining is /readyz's cause while acmed stops; it goes to the log only.
var errDraining = errors.New("draining: acmed is stopping")

// drainer is acmed's clean stop (README: "Stopping and rolling restarts").
// A balancer that polls /readyz needs to see "not ready" while acmed still
// serves, or requests it sends in the meantime meet a closed port; so on a
// signal acmed first only says it is leaving, for --drain-delay, and then
// stops accepting and lets what is in flight finish, within
// --shutdown-timeout.
type drainer struct {
	log      *slog.Logger
	draining atomic.Bool
}

// ready wraps /readyz's store check: not ready once draining.
func (d *drainer) ready(check func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		if d.draining.Load() {
			return errDraining
		}
		return check(ctx)
	}
}

// handler answers with "Connection: close" while draining, so that every
// keep-alive connection (a balancer's included) ends after its current
// response and the client's next request opens one to a replica that is
// staying; HTTP/2 connections get a GOAWAY for the same reason.
func (d *drainer) handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// stop drains srv: not ready for delay while serving as before, then no
// new connections and the requests in flight finished, for at most
// timeout. Past the timeout the remaining connections are closed and the
// error says so.
func (d *drainer) stop(srv *http.Server, delay, timeout time.Duration) error {
	d.draining.Store(true)
	d.log.Info("stopping: draining, /readyz answers 503 while requests are still served", "drain_delay", delay)
	if delay > 0 {
		t := time.NewTimer(delay)
		<-t.C
	}
	d.log.Info("stopping: refusing new connections, finishing requests in flight", "shutdown_timeout", timeout)
	srv.SetKeepAlivesEnabled(false)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("--shutdown-timeout %s: requests were still running; their connections were closed", timeout)
	}
	return nil
}
