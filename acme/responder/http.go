package responder

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Path is where the responder is served: POST to Path, GET of Path + "/"
// and the request (RFC 6960 Appendix A.1). Certificates carry the URL of
// Path.
const Path = "/ocsp"

// maxRequest bounds a POSTed request: one for a single certificate is
// about a hundred bytes.
const maxRequest = 8 << 10

// Route sends Path and everything under it to ocsp, and every other
// request to next. It comes before any router: a GET request's base64 may
// hold "//", which gorilla/mux and http.ServeMux would "clean" away with a
// redirect, and "+" and "=", which they leave alone but a client may have
// percent-encoded.
func Route(ocsp, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == Path || strings.HasPrefix(r.URL.Path, Path+"/") {
			ocsp.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP answers a GET (Path/base64) or a POST (application/ocsp-request
// to Path) with an OCSP response. A request that cannot be read is
// answered malformedRequest with 200 OK, as OCSP clients expect an OCSP
// response whatever went wrong.
func (r *Responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var raw []byte
	var err error
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		raw, err = decodeGET(strings.TrimPrefix(req.URL.Path, Path))
	case http.MethodPost:
		// The Content-Type is not checked: the body is an OCSP request
		// or it is malformed, whatever a client calls it.
		raw, err = io.ReadAll(http.MaxBytesReader(w, req.Body, maxRequest))
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "OCSP requests are GET "+Path+"/{base64 request} or POST "+Path, http.StatusMethodNotAllowed)
		return
	}
	a := malformed
	if err == nil {
		a = r.respond(req.Context(), raw)
	} else {
		r.log.DebugContext(req.Context(), "OCSP: unreadable request", "method", req.Method, "err", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/ocsp-response")
	switch {
	case a.thisUpdate.IsZero():
		h.Set("Cache-Control", "no-store")
	case req.Method != http.MethodPost:
		// RFC 5019 §6.2: a GET answer may be cached until nextUpdate;
		// after a revocation a cache keeps the old answer at most as
		// long as a relying party that asked before would.
		age := int(a.nextUpdate.Sub(r.cfg.Now()) / time.Second)
		h.Set("Cache-Control", "public, no-transform, max-age="+strconv.Itoa(max(age, 0)))
		h.Set("Last-Modified", a.thisUpdate.Format(http.TimeFormat))
		h.Set("Expires", a.nextUpdate.Format(http.TimeFormat))
	}
	h.Set("Content-Length", strconv.Itoa(len(a.der)))
	_, _ = w.Write(a.der)
}

// decodeGET decodes the path after Path: "/" and the base64 of the DER
// request, which net/http has already percent-decoded. Standard base64
// is what Appendix A.1 asks for; unpadded and URL-safe forms are taken
// too, as some clients send them.
func decodeGET(rest string) ([]byte, error) {
	s, ok := strings.CutPrefix(rest, "/")
	if !ok || s == "" {
		return nil, errors.New("GET without a request: want " + Path + "/{base64 request}")
	}
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var raw []byte
		if raw, err = enc.DecodeString(s); err == nil {
			return raw, nil
		}
	}
	return nil, err
}
