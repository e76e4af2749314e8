package main

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Timeouts of the connection to the server under test. A request that
// takes longer than requestTimeout counts as a failed issuance rather than
// stalling a worker.
const (
	dialTimeout      = 10 * time.Second
	handshakeTimeout = 10 * time.Second
	requestTimeout   = 30 * time.Second
	idleConnTimeout  = 90 * time.Second
)

// newTransport keeps connections alive and pools at least one per worker,
// as real clients reuse theirs: a new TLS handshake per request would
// measure the handshake rather than the server.
func newTransport(cfg *config) *http.Transport {
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cfg.roots}
	if cfg.insecure {
		tlsConf.InsecureSkipVerify = true
	}
	return &http.Transport{
		// No proxy from the environment: it would be measured too.
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConf,
		TLSHandshakeTimeout:   handshakeTimeout,
		ResponseHeaderTimeout: requestTimeout,
		IdleConnTimeout:       idleConnTimeout,
		MaxIdleConns:          0, // no overall limit; MaxIdleConnsPerHost bounds it
		MaxIdleConnsPerHost:   cfg.c + 1,
		// HTTP/1.1 with a connection per worker, like certbot's and lego's
		// clients; the pool size above only matters for HTTP/1.1.
		ForceAttemptHTTP2: false,
	}
}

func newHTTPClient(rt http.RoundTripper) *http.Client {
	return &http.Client{Transport: rt, Timeout: requestTimeout}
}

// countingTransport counts the HTTP requests sent through it, whoever
// sends them: the acme package's nonce fetches and retries included.
type countingTransport struct {
	next     *http.Transport
	requests atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.requests.Add(1)
	return t.next.RoundTrip(r)
}
