package integration

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/acme"
)

// roundRobin sends each new connection to the next replica in turn, as a
// plain load balancer would, and skips replicas that refuse connections (a
// load balancer's health check).
type roundRobin struct {
	addrs []string
	next  atomic.Uint64
}

func (rr *roundRobin) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	var lastErr error
	for range rr.addrs {
		addr := rr.addrs[rr.next.Add(1)%uint64(len(rr.addrs))]
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

// client returns an HTTP client whose every request goes to the next
// replica: no connection is reused.
func (rr *roundRobin) client(s *server) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:       rr.dial,
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: s.root},
		},
	}
}

// retry runs op again when it failed without an ACME problem: a connection
// to a replica that died, or a store outage the client library gave up on.
func retry[T any](ctx context.Context, op func() (T, error)) (T, error) {
	var v T
	var err error
	for attempt := 0; attempt < 30; attempt++ {
		if v, err = op(); err == nil {
			return v, nil
		}
		var prob *acme.Error
		if errors.As(err, &prob) && prob.StatusCode < 500 {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(200 * time.Millisecond):
		}
	}
	return v, err
}
