package acme

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
)

const (
	// maxSPIFFEIDLen and maxTrustDomainLen are the SPIFFE-ID spec's
	// interoperability bounds (§2.3): longer IDs need not be understood.
	maxSPIFFEIDLen    = 2048
	maxTrustDomainLen = 255
)

// ParseSPIFFEID checks the SPIFFE ID an operator gives an EAB key, which
// becomes the URI SAN of the X509-SVIDs its accounts get. The grammar
// (lowercase trust domain, path segment charset, no query, fragment,
// port, userinfo, trailing slash or dot segment) is go-spiffe's, whose
// reason is returned as is. On top of it, what would make every
// certificate for the key useless: an ID with no path names the trust
// domain's signing authority, not a workload (SPIFFE-ID §3.1); one past
// the spec's lengths need not be understood (§2.3); and a trust domain
// with an empty label ("a..b", a leading or trailing dot) is refused by
// X.509 parsers as a URI SAN's host (Go's among them), so no verifier
// could read the certificate.
func ParseSPIFFEID(s string) (spiffeid.ID, error) {
	id, err := spiffeid.FromString(s)
	if err != nil {
		return spiffeid.ID{}, err
	}
	td := id.TrustDomain().Name()
	switch {
	case id.Path() == "":
		return spiffeid.ID{}, errors.New("names only the trust domain: a workload's ID has a path (spiffe://TRUST-DOMAIN/PATH)")
	case len(s) > maxSPIFFEIDLen:
		return spiffeid.ID{}, fmt.Errorf("is %d bytes long, over the %d a SPIFFE ID may have", len(s), maxSPIFFEIDLen)
	case len(td) > maxTrustDomainLen:
		return spiffeid.ID{}, fmt.Errorf("trust domain is %d bytes long, over the %d a SPIFFE trust domain may have", len(td), maxTrustDomainLen)
	case strings.HasPrefix(td, ".") || strings.HasSuffix(td, ".") || strings.Contains(td, ".."):
		return spiffeid.ID{}, fmt.Errorf("trust domain %q has an empty label, which X.509 verifiers refuse", td)
	}
	return id, nil
}
