package challenges

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/acmed/acmed/acme"
)

// RFC 8555 §8.3: the key authorization is served at
// http://<domain>/.well-known/acme-challenge/<token>.
const challengePath = "/.well-known/acme-challenge/"

const (
	userAgent = "acmed (RFC 8555 http-01 validation)"
	// gotExcerpt is how much of a wrong body a problem quotes: enough to
	// recognise a web server's error page, not enough to echo a whole file.
	gotExcerpt = 100
	// tlsHandshakeTimeout bounds the handshake with an https redirect target.
	tlsHandshakeTimeout = 5 * time.Second
	// maxHeaderBytes caps response headers; a challenge response needs few.
	maxHeaderBytes = 16 << 10
)

// validateHTTP01 fetches the key authorization from the identifier over
// http (RFC 8555 §8.3; RFC 8738 §3 for an IP address, which is connected to
// and named in the Host header as itself), following redirects within the
// allowed ports.
func (v *Validator) validateHTTP01(ctx context.Context, id acme.Identifier, token, keyAuth string) *acme.Problem {
	host := id.Value
	if id.Type == acme.IdentifierIP {
		addr, p := parseIPIdentifier(id.Value)
		if p != nil {
			return p
		}
		host = addr.String()
	} else if p := checkDomain(host); p != nil {
		return p
	}
	if !validToken(token) {
		return acme.Malformed("http-01 token %q is not base64url", token)
	}
	u := challengeURL(host, v.httpPort, token)

	f := &fetch{v: v, ctx: ctx, domain: host, addrs: make(map[string][]net.IPAddr)}
	// Resolving before the request makes a name without addresses a dns
	// problem even when the lookup is what ran out of time; left to the
	// transport, it would surface as a bare timeout.
	if id.Type == acme.IdentifierDNS {
		if _, lerr := f.resolve(ctx, host); lerr != nil {
			return lerr.problem()
		}
	}
	client := f.client()
	defer client.CloseIdleConnections()

	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, f.trace()), http.MethodGet, u, nil)
	if err != nil {
		return acme.Malformed("http-01 validation URL %s: %v", u, err)
	}
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := client.Do(req)
	if err != nil {
		return f.problem(u, err)
	}
	defer resp.Body.Close()

	final := resp.Request.URL.String()
	if resp.StatusCode != http.StatusOK {
		return acme.IncorrectResponse("%s: Invalid response from %s: %d %s", f.ip(), final, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	// One byte over the limit tells a full-sized body from an oversized one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.maxBody+1))
	if err != nil {
		return f.problem(final, err)
	}
	if int64(len(body)) > v.maxBody {
		return acme.IncorrectResponse("%s: Invalid response from %s: response too large (more than %d bytes); it should hold only the key authorization", f.ip(), final, v.maxBody)
	}
	// §8.3: the server SHOULD ignore whitespace characters at the end of the
	// body, which is where editors and echo put a newline.
	got := strings.TrimRightFunc(string(body), unicode.IsSpace)
	if got != keyAuth {
		return acme.IncorrectResponse("%s: The key authorization file from the server did not match this challenge. Expected %q (got %s)", f.ip(), keyAuth, quoteExcerpt(got))
	}
	return nil
}

// challengeURL is the URL of §8.3; the port is part of it, and so of the
// Host header, only when it is not http's default. An IPv6 address is in
// brackets either way (RFC 3986 §3.2.2).
func challengeURL(host string, port int, token string) string {
	switch {
	case port != 80:
		host = net.JoinHostPort(host, strconv.Itoa(port))
	case strings.Contains(host, ":"):
		host = "[" + host + "]"
	}
	return (&url.URL{Scheme: "http", Host: host, Path: challengePath + token}).String()
}

// parseIPIdentifier reads the value of an IP identifier (RFC 8738 §3). A
// zone would name an interface of the validation server, not the client's
// address.
func parseIPIdentifier(value string) (netip.Addr, *acme.Problem) {
	addr, err := netip.ParseAddr(value)
	if err != nil || addr.Zone() != "" {
		return netip.Addr{}, acme.Malformed("%q is not an IP address", value)
	}
	return addr.Unmap(), nil
}

// checkDomain refuses what cannot be fetched as http://<domain>/: the URL is
// built from it, so a stray "/", "@" or ":" would send the request elsewhere.
func checkDomain(d string) *acme.Problem {
	switch {
	case strings.HasPrefix(d, "*."):
		return acme.Malformed("http-01 cannot validate the wildcard name %q (RFC 8555 §7.1.3); use dns-01", d)
	case net.ParseIP(d) != nil:
		return acme.Malformed("%q is an IP address, not a DNS name", d)
	case !validDNSName(d):
		return acme.Malformed("%q is not a valid DNS name", d)
	}
	return nil
}

// validToken reports whether token is base64url (§8.1), which also keeps it
// a single path segment.
func validToken(token string) bool {
	for i := 0; i < len(token); i++ {
		if c := token[i]; !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return token != ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// quoteExcerpt quotes s, cut to gotExcerpt bytes on a rune boundary; the
// ellipsis stays outside the quotes so it cannot be mistaken for content.
func quoteExcerpt(s string) string {
	if len(s) <= gotExcerpt {
		return strconv.Quote(s)
	}
	cut := gotExcerpt
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// fetch is one http-01 validation in flight. It remembers the addresses it
// dialed and the one that answered, because the errors net/http returns name
// neither and a client needs both to find what is wrong.
type fetch struct {
	v      *Validator
	ctx    context.Context // the validation's; it also bounds dials the transport outlives
	domain string

	mu       sync.Mutex
	addrs    map[string][]net.IPAddr // by host, so a redirect back does not ask again
	attempts []*attempt              // dials made for the current request
	remote   string                  // IP serving the current request; "" until connected
}

// attempt is one dial of one address.
type attempt struct {
	ip  string
	ok  bool
	err error // nil while the dial is in progress or when it succeeded
}

// dialError reports that no address of a host accepted a connection.
type dialError struct {
	attempts []attempt
}

func (e *dialError) Error() string {
	parts := make([]string, len(e.attempts))
	for i, a := range e.attempts {
		parts[i] = a.ip + ": " + a.err.Error()
	}
	return "dial: " + strings.Join(parts, "; ")
}

// redirectError is a redirect that is not followed. Its detail is complete:
// the URLs in it are what the client must change.
type redirectError struct {
	detail string
}

func (e *redirectError) Error() string { return e.detail }

func (f *fetch) client() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// Validation must reach the client's host itself, never a proxy
			// from the environment.
			Proxy:                  nil,
			DialContext:            f.dial,
			DialTLSContext:         f.dialTLS,
			ResponseHeaderTimeout:  f.v.timeout,
			MaxResponseHeaderBytes: maxHeaderBytes,
			DisableKeepAlives:      true,
			// The body is compared byte for byte; a gzip bomb should meet
			// MaxBody before it is inflated.
			DisableCompression: true,
		},
		CheckRedirect: f.checkRedirect,
	}
}

// trace tracks which address the current request went to. GetConn starts
// each request, redirects included; GotConn fires once it has a connection.
func (f *fetch) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GetConn: func(string) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.attempts, f.remote = nil, ""
		},
		GotConn: func(info httptrace.GotConnInfo) {
			host, _, err := net.SplitHostPort(info.Conn.RemoteAddr().String())
			if err != nil {
				host = info.Conn.RemoteAddr().String()
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			f.remote = host
		},
	}
}

// resolve returns host's addresses in the order to dial them.
func (f *fetch) resolve(ctx context.Context, host string) ([]net.IPAddr, *lookupError) {
	f.mu.Lock()
	addrs, ok := f.addrs[host]
	f.mu.Unlock()
	if ok {
		return addrs, nil
	}
	addrs, err := f.v.resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, &lookupError{host: host, err: err}
	}
	addrs = orderAddrs(addrs)
	if len(addrs) == 0 {
		return nil, &lookupError{host: host}
	}
	f.mu.Lock()
	f.addrs[host] = addrs
	f.mu.Unlock()
	return addrs, nil
}

// dial connects to the resolved addresses of addr's host, not to the name,
// so that every address is tried and each failure is known by address. It
// is also where every address, redirect targets' included, meets
// BlockedNetworks.
func (f *fetch) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := f.bound(ctx)
	defer cancel()

	var ips []net.IPAddr
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IPAddr{{IP: ip}}
	} else {
		var lerr *lookupError
		if ips, lerr = f.resolve(ctx, host); lerr != nil {
			return nil, lerr
		}
	}

	var failed []attempt
	for i, ip := range ips {
		if err := f.v.refuse(ip.IP); err != nil {
			failed = append(failed, attempt{ip: ip.String(), err: err})
			continue
		}
		a := &attempt{ip: ip.String()}
		f.mu.Lock()
		f.attempts = append(f.attempts, a)
		f.mu.Unlock()

		actx, acancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(ips)-1 {
			// An address that drops packets gets only its share of the time
			// left, so the addresses after it are still tried.
			actx, acancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(ips)-i))
		}
		conn, err := f.v.dialer.DialContext(actx, network, net.JoinHostPort(ip.String(), port))
		acancel()

		f.mu.Lock()
		a.ok, a.err = err == nil, err
		f.mu.Unlock()
		if err == nil {
			return conn, nil
		}
		failed = append(failed, attempt{ip: a.ip, err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &dialError{attempts: failed}
}

// bound limits ctx to the validation. The transport dials with a context of
// its own, which may outlive the request and carries no deadline; the
// validation's deadline is what the addresses of a host share.
func (f *fetch) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(f.ctx, cancel)
	if dl, ok := f.ctx.Deadline(); ok {
		var cancelDL context.CancelFunc
		ctx, cancelDL = context.WithDeadline(ctx, dl)
		return ctx, func() { cancelDL(); stop(); cancel() }
	}
	return ctx, func() { stop(); cancel() }
}

// dialTLS is dial and then a handshake of our own, for https redirect
// targets: net/http rewords some handshake failures into text, and the
// client should learn which one it was.
func (f *fetch) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := f.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{
		// §8.3: the server SHOULD NOT validate the certificate of an https
		// redirect target; the key authorization is the proof, and a
		// certificate is what the client is still trying to get.
		InsecureSkipVerify: true,
		NextProtos:         []string{"http/1.1"},
	}
	if host, _, err := net.SplitHostPort(addr); err == nil && net.ParseIP(host) == nil {
		cfg.ServerName = host
	}
	ctx, cancel := f.bound(ctx)
	defer cancel()
	ctx, cancelHS := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancelHS()
	tc := tls.Client(conn, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, &handshakeError{err: err}
	}
	return tc, nil
}

// handshakeError is a failed TLS handshake with an https redirect target.
type handshakeError struct {
	err error
}

func (e *handshakeError) Error() string { return "TLS handshake: " + e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// reason words the failure; the tls package's own messages are meant for
// people, a *net.OpError's would show the validation server's address.
func (e *handshakeError) reason() string {
	var (
		rhErr tls.RecordHeaderError
		opErr *net.OpError
	)
	switch {
	case errors.As(e.err, &rhErr):
		return "the server did not answer with TLS (is it serving plain http on this port?)"
	case errors.As(e.err, &opErr) && opErr.Op == "remote error":
		return "the server sent the alert " + opErr.Err.Error()
	case errors.Is(e.err, io.EOF), errors.Is(e.err, syscall.ECONNRESET):
		return "the server closed the connection during the handshake"
	case errors.As(e.err, &opErr):
		return "the connection failed during the handshake"
	default:
		return e.err.Error()
	}
}

// checkRedirect follows at most MaxRedirects redirects, and only to the ports
// a client is expected to serve: a redirect is the client's host telling the
// validator where to connect, and it must not be able to point it anywhere.
func (f *fetch) checkRedirect(req *http.Request, via []*http.Request) error {
	from, to := via[len(via)-1].URL.String(), req.URL.String()
	if f.v.maxRedirects < 0 {
		return &redirectError{fmt.Sprintf("Fetching %s: Redirect to %s is not followed: this server follows no redirects", from, to)}
	}
	if len(via) > f.v.maxRedirects {
		return &redirectError{fmt.Sprintf("Fetching %s: Too many redirects (more than %d); the last was to %s", from, f.v.maxRedirects, to)}
	}
	var want int
	switch req.URL.Scheme {
	case "http":
		want = f.v.httpPort
	case "https":
		want = f.v.httpsPort
	default:
		return &redirectError{fmt.Sprintf("Fetching %s: Redirect to %s is not allowed: only http and https redirects are followed", from, to)}
	}
	port := req.URL.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[req.URL.Scheme]
	}
	if port != strconv.Itoa(want) || req.URL.Hostname() == "" {
		return &redirectError{fmt.Sprintf("Fetching %s: Redirect to %s is not allowed: only redirects to port %d (http) or %d (https) are followed", from, to, f.v.httpPort, f.v.httpsPort)}
	}
	return nil
}

// ip is the address the current request went to, or was being dialed, for
// the "<ip>: " that starts every detail about a fetch.
func (f *fetch) ip() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remote != "" {
		return f.remote
	}
	if n := len(f.attempts); n > 0 {
		return f.attempts[n-1].ip
	}
	return f.domain
}

// problem turns a failed fetch of u into the problem a client can act on.
func (f *fetch) problem(u string, err error) *acme.Problem {
	var ue *url.Error
	if errors.As(err, &ue) {
		u = ue.URL
	}
	var (
		re *redirectError
		le *lookupError
		de *dialError
		he *handshakeError
	)
	switch {
	case errors.As(err, &re):
		return acme.Connection("%s: %s", f.ip(), re.detail)
	case errors.As(err, &le):
		p := le.problem()
		if le.host != f.domain {
			p.Detail = "Fetching " + u + ": " + p.Detail
		}
		return p
	case errors.As(err, &de) && len(de.attempts) > 0:
		return dialProblem("Fetching "+u, de.attempts)
	case errors.As(err, &he) && isTimeout(he.err):
		return acme.Connection("%s: Fetching %s: TLS handshake timeout (your server may be slow or overloaded)", f.ip(), u)
	case errors.As(err, &he):
		return acme.TLS("%s: Fetching %s: TLS handshake failed: %s", f.ip(), u, he.reason())
	}

	f.mu.Lock()
	remote := f.remote
	attempts := make([]attempt, len(f.attempts))
	for i, a := range f.attempts {
		attempts[i] = *a
	}
	f.mu.Unlock()
	connected := remote != "" || len(attempts) > 0 && attempts[len(attempts)-1].ok

	if isTimeout(err) || f.ctx.Err() != nil {
		switch {
		case connected:
			return acme.Connection("%s: Fetching %s: Read timeout after connect (your server may be slow or overloaded)", f.ip(), u)
		case len(attempts) > 0:
			return dialProblem("Fetching "+u, attempts)
		default:
			return acme.Connection("%s: Fetching %s: Connect timeout (likely firewall problem)", f.ip(), u)
		}
	}
	if !connected && len(attempts) > 0 {
		return dialProblem("Fetching "+u, attempts)
	}
	return acme.Connection("%s: Fetching %s: %s", f.ip(), u, afterConnectReason(err))
}

// dialProblem names the last address tried, which is what the client most
// likely meant to serve on (IPv4 after IPv6), and then the others. action
// says what the connection was for ("Fetching <url>").
func dialProblem(action string, attempts []attempt) *acme.Problem {
	last := attempts[len(attempts)-1]
	reason, hint := connectReason(last.err)
	detail := fmt.Sprintf("%s: %s: %s%s", last.ip, action, reason, hint)
	if len(attempts) > 1 {
		others := make([]string, 0, len(attempts)-1)
		for _, a := range attempts[:len(attempts)-1] {
			reason, _ := connectReason(a.err)
			others = append(others, fmt.Sprintf("%s (%s)", a.ip, reason))
		}
		detail += "; also tried " + strings.Join(others, ", ")
	}
	return acme.Connection("%s", detail)
}

// connectReason words a dial failure, with a hint worth giving once per
// detail; a nil err is a dial the validation's deadline overtook.
func connectReason(err error) (reason, hint string) {
	var be *blockedError
	switch {
	case errors.As(err, &be):
		return be.Error(), ""
	case err == nil, isTimeout(err):
		return "Connect timeout", " (likely firewall problem)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "Connection refused", ""
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "No route to host", ""
	case errors.Is(err, syscall.ENETUNREACH):
		return "Network unreachable", ""
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "Address not reachable from the validation server", ""
	default:
		return "Connection failed", ""
	}
}

// afterConnectReason words a failure once connected. Go's own error text is
// shown only where it describes the response; a *net.OpError would also show
// the validation server's address.
func afterConnectReason(err error) string {
	var opErr *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "Connection reset by peer"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Connection closed by the server before a complete response"
	case errors.As(err, &opErr):
		return "Error getting validation data"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return "Error getting validation data: " + err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
