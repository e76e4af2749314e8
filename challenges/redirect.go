package challenges

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"

	"github.com/acmed/acmed/acme"
)

// redirectTarget returns where resp, the answer to from, redirects, or nil
// when it is not a redirect. hops is how many redirects led to from.
//
// A redirect is the client's host telling the validator where to connect,
// so it may point only where a client is expected to serve: http on the
// http-01 port or https on the configured https port, a valid DNS name or
// an IP literal, no credentials, at most MaxRedirects times. The target
// then goes through fetch like the first URL did: its own lookup, and the
// guard on every address.
func (v *Validator) redirectTarget(from *url.URL, resp *http.Response, hops int, ip string) (*url.URL, *acme.Problem) {
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
	default:
		return nil, nil
	}
	to, err := resp.Location()
	if err != nil {
		return nil, acme.Connection("%s: Fetching %s: Redirect (%d) without a valid Location", ip, from, resp.StatusCode)
	}
	to.Fragment, to.RawFragment = "", ""
	refuse := func(why string) *acme.Problem {
		return acme.Connection("%s: Fetching %s: Redirect to %s is not allowed: %s", ip, from, to, why)
	}
	switch {
	case v.maxRedirects < 0:
		return nil, acme.Connection("%s: Fetching %s: Redirect to %s is not followed: this server follows no redirects", ip, from, to)
	case hops >= v.maxRedirects:
		return nil, acme.Connection("%s: Fetching %s: Too many redirects (more than %d); the last was to %s", ip, from, v.maxRedirects, to)
	case to.Scheme != "http" && to.Scheme != "https":
		return nil, refuse("only http and https redirects are followed")
	case to.User != nil:
		return nil, refuse("a URL with credentials is not followed")
	}
	want, port := v.httpPort, to.Port()
	if to.Scheme == "https" {
		want = v.httpsPort
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[to.Scheme]
	}
	if port != strconv.Itoa(want) {
		return nil, refuse("only redirects to port " + strconv.Itoa(v.httpPort) + " (http) or " + strconv.Itoa(v.httpsPort) + " (https) are followed")
	}
	host := to.Hostname()
	if addr, err := netip.ParseAddr(host); err == nil {
		if addr.Zone() != "" {
			return nil, refuse("an address with a zone names an interface of the validation server")
		}
		return to, nil
	}
	if !validDNSName(host) {
		return nil, refuse(strconv.Quote(host) + " is not a valid DNS name")
	}
	return to, nil
}
