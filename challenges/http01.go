package challenges

import (
	"context"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"github.com/acmed/acmed/acme"
)

// RFC 8555 §8.3: the key authorization is served at
// http://<domain>/.well-known/acme-challenge/<token>.
const challengePath = "/.well-known/acme-challenge/"

// validateHTTP01 fetches the key authorization from the identifier over
// http (RFC 8555 §8.3; RFC 8738 §3 for an IP address, which is connected to
// and named in the Host header as itself), following redirects that
// redirectTarget allows. It returns one record per URL fetched, the first
// and each redirect, up to the one that failed.
//
// It never puts a byte of a response body in a problem: a redirect can
// point the validator at an internal page, and the problem goes to the
// account that asked for the validation. A wrong response is described by
// its status, length and content type.
func (v *Validator) validateHTTP01(ctx context.Context, id acme.Identifier, token, keyAuth string) ([]acme.ValidationRecord, *acme.Problem) {
	host := id.Value
	if id.Type == acme.IdentifierIP {
		addr, p := parseIPIdentifier(id.Value)
		if p != nil {
			return nil, p
		}
		host = addr.String()
	} else if p := checkDomain(host); p != nil {
		return nil, p
	}
	if !validToken(token) {
		return nil, acme.Malformed("http-01 token %q is not base64url", token)
	}
	u, err := url.Parse(challengeURL(host, v.httpPort, token))
	if err != nil {
		return nil, acme.Malformed("http-01 validation URL for %q: %v", host, err)
	}

	var records []acme.ValidationRecord
	for hops := 0; ; hops++ {
		records = append(records, acme.ValidationRecord{})
		rec := &records[len(records)-1]
		resp, p := v.fetch(ctx, u, rec, hops > 0)
		if p != nil {
			return records, p
		}
		next, p := v.redirectTarget(u, resp, hops, rec.AddressUsed)
		if p != nil || next == nil {
			if p == nil {
				p = v.checkResponse(ctx, resp, rec, keyAuth)
			}
			resp.Body.Close()
			return records, p
		}
		resp.Body.Close()
		u = next
	}
}

// checkResponse checks the final response of a fetch: status 200, a body
// of at most MaxBody bytes that is the key authorization.
func (v *Validator) checkResponse(ctx context.Context, resp *http.Response, rec *acme.ValidationRecord, keyAuth string) *acme.Problem {
	ip := rec.AddressUsed
	if resp.StatusCode != http.StatusOK {
		return acme.IncorrectResponse("%s: Invalid response from %s: %d %s", ip, rec.URL, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	// One byte over the limit tells a full-sized body from an oversized one.
	body, err := io.ReadAll(io.LimitReader(resp.Body, v.maxBody+1))
	if err != nil {
		if ctx.Err() != nil {
			err = context.DeadlineExceeded
		}
		return readProblem(ip, rec.URL, err)
	}
	if int64(len(body)) > v.maxBody {
		return acme.IncorrectResponse("%s: Invalid response from %s: response too large (more than %d bytes); it should hold only the key authorization", ip, rec.URL, v.maxBody)
	}
	// §8.3: the server SHOULD ignore whitespace characters at the end of the
	// body, which is where editors and echo put a newline.
	got := strings.TrimRightFunc(string(body), unicode.IsSpace)
	if got != keyAuth {
		return acme.IncorrectResponse("%s: The key authorization file from the server did not match this challenge. Expected %q (got %d bytes of %s from %s)", ip, keyAuth, len(body), contentType(resp), rec.URL)
	}
	return nil
}

// contentType names a response's media type without its parameters, or
// says it has none or an unreadable one: the header is the server's to
// write, and only a well-formed type/subtype is shown of it.
func contentType(resp *http.Response) string {
	ct := resp.Header.Get("Content-Type")
	if ct == "" {
		return "no stated content type"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || len(mt) > 100 || !strings.Contains(mt, "/") {
		return "an invalid content type"
	}
	return mt
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
