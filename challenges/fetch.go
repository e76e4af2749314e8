package challenges

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/acmed/acmed/acme"
)

const (
	userAgent = "acmed (RFC 8555 http-01 validation)"
	// tlsHandshakeTimeout bounds the handshake with an https redirect target.
	tlsHandshakeTimeout = 5 * time.Second
	// maxHeaderBytes caps response headers; a challenge response needs few.
	maxHeaderBytes = 16 << 10
)

// fetch GETs u and returns its response, headers read, body not. It
// resolves u's host itself and connects through dialFirst, so every
// address is tried in order, each failure is known by address, and each
// meets the guard; rec gets what was checked as it goes, failure or not.
// redirected says u came from a redirect, so a problem names it.
func (v *Validator) fetch(ctx context.Context, u *url.URL, rec *acme.ValidationRecord, redirected bool) (*http.Response, *acme.Problem) {
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	*rec = acme.ValidationRecord{URL: u.String(), Hostname: host, Port: port}

	var ips []net.IPAddr
	if addr, err := netip.ParseAddr(host); err == nil {
		ips = []net.IPAddr{{IP: addr.AsSlice()}}
	} else {
		found, queries, err := v.lookupIP(ctx, host)
		rec.Queries = queries
		if ips = orderAddrs(found); err != nil || len(ips) == 0 {
			p := (&lookupError{host: host, err: err}).problem()
			if redirected {
				p.Detail = "Fetching " + rec.URL + ": " + p.Detail
			}
			return nil, p
		}
	}
	for _, ip := range ips {
		rec.AddressesResolved = append(rec.AddressesResolved, ip.IP.String())
	}

	conn, failed := v.dialFirst(ctx, ips, port)
	if conn == nil {
		return nil, dialProblem("Fetching "+rec.URL, failed)
	}
	rec.AddressUsed, _, _ = net.SplitHostPort(conn.RemoteAddr().String())
	// The connection lives no longer than the validation, whatever reads
	// from it; a canceled validation closes it at once.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	if u.Scheme == "https" {
		tc, p := handshakeHTTPS(ctx, conn, host, rec)
		if p != nil {
			conn.Close()
			return nil, p
		}
		conn = tc
	}
	resp, err := roundTrip(ctx, conn, u, v.timeout)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			// The validation's end closed the connection: whatever the
			// read saw, it ran out of time.
			err = context.DeadlineExceeded
		}
		return nil, readProblem(rec.AddressUsed, rec.URL, err)
	}
	return resp, nil
}

// roundTrip sends the GET over conn, which is already connected (and, for
// https, past its handshake): the transport dials nothing itself.
func roundTrip(ctx context.Context, conn net.Conn, u *url.URL, timeout time.Duration) (*http.Response, error) {
	handed := false
	once := func(context.Context, string, string) (net.Conn, error) {
		if handed {
			return nil, errors.New("validation makes one request per connection")
		}
		handed = true
		return conn, nil
	}
	tr := &http.Transport{
		// Validation must reach the client's host itself, never a proxy
		// from the environment.
		Proxy:                  nil,
		DialContext:            once,
		DialTLSContext:         once,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		DisableKeepAlives:      true,
		// The body is compared byte for byte; a gzip bomb should meet
		// MaxBody before it is inflated.
		DisableCompression: true,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	// Redirects are not the transport's business: redirectTarget decides.
	return tr.RoundTrip(req)
}

// handshakeHTTPS is the TLS handshake with an https redirect target, our
// own rather than net/http's: net/http rewords some handshake failures
// into text, and the client should learn which one it was.
func handshakeHTTPS(ctx context.Context, conn net.Conn, host string, rec *acme.ValidationRecord) (net.Conn, *acme.Problem) {
	cfg := &tls.Config{
		// §8.3: the server SHOULD NOT validate the certificate of an https
		// redirect target; the key authorization is the proof, and a
		// certificate is what the client is still trying to get.
		InsecureSkipVerify: true,
		NextProtos:         []string{"http/1.1"},
	}
	if net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(hctx); err != nil {
		if isTimeout(err) || ctx.Err() != nil {
			return nil, acme.Connection("%s: Fetching %s: TLS handshake timeout (your server may be slow or overloaded)", rec.AddressUsed, rec.URL)
		}
		return nil, acme.TLS("%s: Fetching %s: TLS handshake failed: %s", rec.AddressUsed, rec.URL, (&handshakeError{err: err}).reason())
	}
	return tc, nil
}
