package api

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
)

// ChainSource gives a certificate's alternate chains (ca.Alternates).
type ChainSource interface {
	// Chains returns the alternate chains of the certificate heading
	// chainPEM (its stored, default chain), each leaf first, in PEM, in a
	// stable order; none: nil.
	Chains(chainPEM []byte) [][]byte
}

// alternates is c's alternate chains; none without a ChainSource.
func (s *Server) alternates(c *acme.Certificate) [][]byte {
	if s.cfg.Alternates == nil {
		return nil
	}
	return s.cfg.Alternates.Chains(c.ChainPEM)
}

// chainLinks links the chain served (0 the default, n the n-th
// alternate) to each of the certificate's other chains (RFC 8555
// §7.4.2): a client reading any one of them finds them all.
func (s *Server) chainLinks(w http.ResponseWriter, c *acme.Certificate, served, alternates int) {
	if alternates == 0 {
		return
	}
	base := s.certURL(c.Serial)
	if served != 0 {
		w.Header().Add("Link", link(base, "alternate"))
	}
	for n := 1; n <= alternates; n++ {
		if n != served {
			w.Header().Add("Link", link(base+"/"+strconv.Itoa(n), "alternate"))
		}
	}
}

// certificateAlternate serves alternate chain n of a certificate, at its
// URL followed by /n (n from 1).
func (s *Server) certificateAlternate(w http.ResponseWriter, r *http.Request) {
	s.handle(w, r, needKID, func(req *request) error {
		if err := postAsGet(req); err != nil {
			return err
		}
		vars := mux.Vars(r)
		c, err := s.auth.Certificate(r.Context(), req.caller, vars["serial"])
		if err != nil {
			return err
		}
		alts := s.alternates(c)
		n, err := strconv.Atoi(vars["alt"])
		// Only the canonical spelling names a chain: /01 is not /1.
		if err != nil || n < 1 || n > len(alts) || strconv.Itoa(n) != vars["alt"] {
			return acme.NotFound("certificate %s has no alternate chain %q", c.Serial, vars["alt"])
		}
		s.chainLinks(w, c, n, len(alts))
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		s.write(w, alts[n-1])
		return nil
	})
}
