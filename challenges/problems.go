package challenges

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"github.com/acmed/acmed/acme"
)

// How a failed connection is worded for the client. The wording never
// carries the target's bytes (a Go error about a malformed response quotes
// them) nor the validation server's own address (a *net.OpError shows it).

// gotExcerpt is how much of a wrong TXT record a dns-01 problem quotes:
// enough to recognise an old value, not enough to echo a whole record.
const gotExcerpt = 100

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

// attempt is one dial of one address.
type attempt struct {
	ip  string
	err error
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

// readProblem words a failure once connected to ip, fetching u.
func readProblem(ip, u string, err error) *acme.Problem {
	if isTimeout(err) {
		return acme.Connection("%s: Fetching %s: Read timeout after connect (your server may be slow or overloaded)", ip, u)
	}
	return acme.Connection("%s: Fetching %s: %s", ip, u, afterConnectReason(err))
}

// afterConnectReason words a failure once connected, from a fixed set of
// phrases: net/http's own errors quote the bytes a server sent when they
// do not parse as HTTP, and those bytes may be an internal service's.
func afterConnectReason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "Connection reset by peer"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "Connection closed by the server before a complete response"
	case errors.Is(err, net.ErrClosed), errors.Is(err, context.Canceled):
		return "Connection closed"
	case strings.Contains(err.Error(), "malformed HTTP"):
		return "The server's answer is not a valid HTTP response"
	case strings.Contains(err.Error(), "response headers exceeded"):
		return "The response headers are too large"
	default:
		return "Error getting validation data"
	}
}

// handshakeError is a failed TLS handshake.
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
		return "the handshake failed"
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
