// Package challengetest runs the network peers that ACME challenge
// validation talks to: an authoritative DNS server (dns-01, and the
// addresses http-01 and tls-alpn-01 connect to), an http-01 responder and a
// tls-alpn-01 responder. Tests start them on loopback with the Start*
// helpers; the challtestsrv program serves them to real ACME clients with
// the management API from NewAPI.
package challengetest

import (
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Each responder gives up on a stuck peer or shutdown after these, so a
// misbehaving client cannot hang a test.
const (
	ioTimeout       = 5 * time.Second
	shutdownTimeout = 5 * time.Second
)

// canonicalName is the key DNS data is stored under: DNS names compare
// case-insensitively and clients send them both with and without the root
// dot.
func canonicalName(name string) string {
	return dns.Fqdn(strings.ToLower(name))
}
