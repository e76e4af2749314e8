package challenges

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/acmed/acmed/acme"
	"github.com/miekg/dns"
)

// RFC 8555 §8.4: the record lives at the validation domain name, which is
// the identifier with this label prepended.
const dnsChallengeLabel = "_acme-challenge"

// validateDNS01 looks for a TXT record at _acme-challenge.<name> holding the
// base64url SHA-256 digest of the key authorization (RFC 8555 §8.4).
// Lookups go through the resolver, so through Config.Nameservers when set,
// with CNAMEs followed: delegating _acme-challenge into a zone that only
// holds validation records is how most clients automate dns-01.
func (v *Validator) validateDNS01(ctx context.Context, id acme.Identifier, _, keyAuth string) ([]acme.ValidationRecord, *acme.Problem) {
	// A wildcard is validated at its base name (§8.4); the authority sends
	// the base name, and one arriving with "*." means the same.
	domain := strings.TrimPrefix(id.Value, "*.")
	if !validDNSName(domain) {
		return nil, acme.Malformed("%q is not a valid DNS name", id.Value)
	}
	name := dnsChallengeLabel + "." + domain
	txts, queries, err := v.lookupTXT(ctx, name)
	records := []acme.ValidationRecord{{Hostname: domain, Queries: queries}}
	return records, checkTXT(name, keyAuth, txts, err)
}

// checkTXT checks the TXT records found at name (or the lookup's err).
func checkTXT(name, keyAuth string, txts []string, err error) *acme.Problem {
	if err != nil {
		return txtProblem(name, err)
	}
	if len(txts) == 0 {
		return acme.DNS("No TXT record found at %s", name)
	}
	sum := sha256.Sum256([]byte(keyAuth))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	// A client may leave old values beside the new one, or validate a name
	// and its wildcard at once: any one matching is enough.
	for _, txt := range txts {
		if subtle.ConstantTimeCompare([]byte(txt), []byte(want)) == 1 {
			return nil
		}
	}
	more := ""
	if len(txts) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(txts)-1)
	}
	return acme.IncorrectResponse("Incorrect TXT record %s%s found at %s", quoteExcerpt(txts[0]), more, name)
}

// txtProblem words a failed TXT lookup of name.
func txtProblem(name string, err error) *acme.Problem {
	var (
		dnsErr *net.DNSError
		rc     rcodeError
	)
	isDNS := errors.As(err, &dnsErr)
	isRcode := errors.As(err, &rc)
	switch {
	case isRcode && int(rc) == dns.RcodeNameError:
		return acme.DNS("DNS problem: NXDOMAIN looking up TXT for %s - check that a DNS record exists for this domain", name)
	case isDNS && dnsErr.IsNotFound:
		return acme.DNS("No TXT record found at %s", name)
	case isDNS && dnsErr.IsTimeout, errors.Is(err, context.DeadlineExceeded):
		return acme.DNS("DNS problem: query timed out looking up TXT for %s", name)
	case isRcode:
		return acme.DNS("DNS problem: %s looking up TXT for %s", rc, name)
	case isDNS:
		return acme.DNS("DNS problem: looking up TXT for %s: %s", name, dnsErr.Err)
	default:
		return acme.DNS("DNS problem: looking up TXT for %s failed", name)
	}
}
