package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
)

// checkOCSP checks the --ocsp flags: the others mean nothing without it,
// and an operator who set one expects a responder.
func (c config) checkOCSP() error {
	if !c.OCSP {
		switch {
		case c.OCSPBaseURL != "":
			return errors.New("--ocsp-base-url: needs --ocsp")
		case c.OCSPDelegated:
			return errors.New("--ocsp-delegated: needs --ocsp")
		}
		return nil
	}
	if c.OCSPValidity < time.Minute {
		return fmt.Errorf("--ocsp-validity %s: must be at least 1m", c.OCSPValidity)
	}
	if c.OCSPDelegated && c.OCSPValidity < 5*time.Minute {
		return fmt.Errorf("--ocsp-validity %s: must be at least 5m with --ocsp-delegated", c.OCSPValidity)
	}
	if c.OCSPBaseURL != "" {
		if _, err := ocspBase(c.OCSPBaseURL); err != nil {
			return err
		}
	}
	return nil
}

// ocspBase parses --ocsp-base-url: where relying parties reach the
// responder's path, usually plain http (RFC 6960 Appendix A.1), as no
// client verifies a TLS certificate to learn whether one is revoked.
func ocspBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("--ocsp-base-url %q: want http://HOST[:PORT] (or https) with no path; the responder is at %s under it", raw, responder.Path)
	}
	u.Path = ""
	return u, nil
}

// ocspServer is the responder URL certificates carry (their authority
// information access), nil without --ocsp: --ocsp-base-url, or else the
// external URL, followed by /ocsp.
func ocspServer(c config, external *url.URL) []string {
	if !c.OCSP {
		return nil
	}
	base := external
	if c.OCSPBaseURL != "" {
		base, _ = ocspBase(c.OCSPBaseURL) // checked with the config
	}
	return []string{base.String() + responder.Path}
}

// newOCSP builds the OCSP responder (nil without --ocsp): for each of the
// CA's issuers, active and retired, signed by the intermediate itself, or
// with --ocsp-delegated by a responder certificate of this replica's
// (issuers.publish makes them). The handler is mounted with
// responder.Route, before any router.
func newOCSP(c config, is *issuers, auth *authority.Authority, instrument func(string, http.Handler) http.Handler, log *slog.Logger) (http.Handler, error) {
	if !c.OCSP {
		return nil, nil
	}
	if c.OCSPDelegated {
		// The delegated responder of each issuer is made when it is
		// loaded; one that cannot be made fails startup here.
		for _, i := range is.ocspIssuers() {
			if _, ok := i.Signer.(*ca.DelegatedOCSP); !ok {
				return nil, fmt.Errorf("--ocsp-delegated: no responder certificate for issuer %s", ca.CRLName(i.Cert))
			}
		}
	}
	r, err := responder.New(responder.Config{Issuers: is.ocspIssuers, Lookup: auth, Validity: c.OCSPValidity, Logger: log})
	if err != nil {
		return nil, err
	}
	if instrument != nil {
		return instrument(responder.Path, r), nil
	}
	return r, nil
}
