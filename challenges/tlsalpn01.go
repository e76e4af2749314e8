package challenges

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/acmed/acmed/acme"
	"github.com/miekg/dns"
)

// acmeTLSALPN is the only protocol a tls-alpn-01 validation offers
// (RFC 8737 §6.2): a server that negotiates it answers for validation only.
const acmeTLSALPN = "acme-tls/1"

// oidACMEIdentifier is id-pe-acmeIdentifier (RFC 8737 §6.1). A function, so
// no caller can change the slice another compares against.
func oidACMEIdentifier() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}
}

// oidSubjectAltName is the X.509 subjectAltName extension (RFC 5280 §4.2.1.6).
func oidSubjectAltName() asn1.ObjectIdentifier {
	return asn1.ObjectIdentifier{2, 5, 29, 17}
}

// validateTLSALPN01 connects to the identifier on the tls-alpn-01 port,
// offers only acme-tls/1, and checks the self-signed certificate the client
// built for the challenge (RFC 8737 §3; RFC 8738 §6 for IP addresses). Its
// one record is the connection: hostname, port, addresses resolved, the
// address used.
func (v *Validator) validateTLSALPN01(ctx context.Context, id acme.Identifier, _, keyAuth string) ([]acme.ValidationRecord, *acme.Problem) {
	var (
		sni  string
		addr net.IP // the IP identifier; nil for a name
		ips  []net.IPAddr
		rec  = acme.ValidationRecord{Hostname: id.Value, Port: strconv.Itoa(v.tlsALPNPort)}
	)
	switch id.Type {
	case acme.IdentifierIP:
		a, p := parseIPIdentifier(id.Value)
		if p != nil {
			return nil, p
		}
		rec.Hostname, addr = a.String(), a.AsSlice()
		ips = []net.IPAddr{{IP: addr}}
		// RFC 8738 §6: an IP address is not allowed in SNI, so its reverse
		// DNS name stands in for it.
		arpa, err := dns.ReverseAddr(a.String())
		if err != nil {
			return nil, acme.Malformed("%q is not an IP address", id.Value)
		}
		sni = strings.TrimSuffix(arpa, ".")
	default:
		if strings.HasPrefix(id.Value, "*.") {
			return nil, acme.Malformed("tls-alpn-01 cannot validate the wildcard name %q (RFC 8737 §3); use dns-01", id.Value)
		}
		if !validDNSName(id.Value) {
			return nil, acme.Malformed("%q is not a valid DNS name", id.Value)
		}
		sni = id.Value
		found, queries, err := v.lookupIP(ctx, id.Value)
		rec.Queries = queries
		if err != nil {
			return []acme.ValidationRecord{rec}, (&lookupError{host: id.Value, err: err}).problem()
		}
		if ips = orderAddrs(found); len(ips) == 0 {
			return []acme.ValidationRecord{rec}, (&lookupError{host: id.Value}).problem()
		}
	}
	for _, ip := range ips {
		rec.AddressesResolved = append(rec.AddressesResolved, ip.IP.String())
	}
	conn, failed := v.dialFirst(ctx, ips, rec.Port)
	if conn == nil {
		return []acme.ValidationRecord{rec}, dialProblem("Connecting to "+net.JoinHostPort(rec.Hostname, rec.Port)+" for tls-alpn-01", failed)
	}
	defer conn.Close()
	rec.AddressUsed, _, _ = net.SplitHostPort(conn.RemoteAddr().String())
	return []acme.ValidationRecord{rec}, v.handshakeALPN(ctx, conn, rec, sni, id, addr, keyAuth)
}

// handshakeALPN runs the tls-alpn-01 handshake over conn and checks the
// certificate it got.
func (v *Validator) handshakeALPN(ctx context.Context, conn net.Conn, rec acme.ValidationRecord, sni string, id acme.Identifier, addr net.IP, keyAuth string) *acme.Problem {
	ip, target := rec.AddressUsed, net.JoinHostPort(rec.Hostname, rec.Port)
	tc := tls.Client(conn, &tls.Config{
		ServerName: sni,
		NextProtos: []string{acmeTLSALPN},
		// The certificate is self-signed by design (RFC 8737 §3): what it
		// proves is checked below, not its chain.
		InsecureSkipVerify: true,
		MinVersion:         tls.VersionTLS12,
	})
	hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		var opErr *net.OpError
		switch {
		case isTimeout(err) || ctx.Err() != nil:
			return acme.Connection("%s: Connecting to %s for tls-alpn-01: TLS handshake timeout (your server may be slow or overloaded)", ip, target)
		case errors.As(err, &opErr) && opErr.Op == "remote error" && strings.HasSuffix(opErr.Err.Error(), "no application protocol"):
			// The tls package's alert type is unexported; its text is all
			// there is to recognise it by.
			return acme.TLS("%s: Connecting to %s for tls-alpn-01: the server did not negotiate acme-tls/1 (it refused the protocol with the alert no_application_protocol)", ip, target)
		default:
			return acme.TLS("%s: Connecting to %s for tls-alpn-01: TLS handshake failed: %s", ip, target, (&handshakeError{err: err}).reason())
		}
	}
	state := tc.ConnectionState()
	if state.NegotiatedProtocol != acmeTLSALPN {
		// The tls package refuses a protocol that was not offered, so the
		// server negotiated none.
		return acme.TLS("%s: Connecting to %s for tls-alpn-01: the server did not negotiate acme-tls/1 (negotiated: none)", ip, target)
	}
	if len(state.PeerCertificates) == 0 {
		return acme.TLS("%s: Connecting to %s for tls-alpn-01: the server sent no certificate", ip, target)
	}
	if reason := checkALPNCert(state.PeerCertificates[0], id, addr, keyAuth); reason != "" {
		return acme.IncorrectResponse("%s: Incorrect validation certificate for tls-alpn-01 challenge from %s: %s", ip, target, reason)
	}
	return nil
}

// checkALPNCert returns why leaf does not prove control of id (RFC 8737 §3),
// or "" when it does. addr is id's address for an IP identifier.
func checkALPNCert(leaf *x509.Certificate, id acme.Identifier, addr net.IP, keyAuth string) string {
	sans, err := subjectAltNames(leaf)
	if err != nil {
		return "its subjectAltName extension is malformed: " + err.Error()
	}
	var ok bool
	want := fmt.Sprintf("dNSName %q", id.Value)
	if addr != nil {
		want = "iPAddress " + addr.String()
	}
	if len(sans) == 1 {
		switch san := sans[0]; {
		case addr == nil && san.tag == sanDNSName:
			ok = strings.EqualFold(string(san.value), id.Value)
		case addr != nil && san.tag == sanIPAddress:
			ok = net.IP(san.value).Equal(addr)
		}
	}
	if !ok {
		found := "none"
		if len(sans) > 0 {
			parts := make([]string, len(sans))
			for i, san := range sans {
				parts[i] = san.String()
			}
			found = fmt.Sprintf("%d: %s", len(sans), strings.Join(parts, ", "))
		}
		return fmt.Sprintf("it must have exactly one subjectAltName, %s; found %s", want, found)
	}

	var ext *pkix.Extension
	for i, e := range leaf.Extensions {
		if e.Id.Equal(oidACMEIdentifier()) {
			ext = &leaf.Extensions[i]
		}
	}
	sum := sha256.Sum256([]byte(keyAuth))
	switch {
	case ext == nil:
		return "it has no acmeIdentifier extension (1.3.6.1.5.5.7.1.31)"
	case !ext.Critical:
		return "its acmeIdentifier extension (1.3.6.1.5.5.7.1.31) is not marked critical"
	}
	// RFC 8737 §3: Authorization ::= OCTET STRING (SIZE (32)), DER-encoded.
	var digest []byte
	rest, err := asn1.Unmarshal(ext.Value, &digest)
	if err != nil || len(rest) > 0 || len(ext.Value) == 0 || ext.Value[0] != asn1.TagOctetString || len(digest) != sha256.Size {
		return "its acmeIdentifier extension (1.3.6.1.5.5.7.1.31) is malformed: it must hold a DER OCTET STRING of the 32-byte SHA-256 digest of the key authorization"
	}
	if subtle.ConstantTimeCompare(digest, sum[:]) != 1 {
		return fmt.Sprintf("its acmeIdentifier extension (1.3.6.1.5.5.7.1.31) holds the wrong value: expected the SHA-256 digest of the key authorization, %x; got %x", sum[:], digest)
	}
	return ""
}

// GeneralName tags (RFC 5280 §4.2.1.6) that a tls-alpn-01 certificate may
// carry; any other counts as a subjectAltName too.
const (
	sanRFC822Name = 1
	sanDNSName    = 2
	sanURI        = 6
	sanIPAddress  = 7
)

// generalName is one subjectAltName, raw.
type generalName struct {
	tag   int
	value []byte
}

func (g generalName) String() string {
	switch g.tag {
	case sanDNSName:
		return fmt.Sprintf("dNSName %q", g.value)
	case sanIPAddress:
		if len(g.value) == net.IPv4len || len(g.value) == net.IPv6len {
			return "iPAddress " + net.IP(g.value).String()
		}
		return fmt.Sprintf("iPAddress %x", g.value)
	case sanRFC822Name:
		return fmt.Sprintf("rfc822Name %q", g.value)
	case sanURI:
		return fmt.Sprintf("uniformResourceIdentifier %q", g.value)
	}
	names := map[int]string{0: "otherName", 3: "x400Address", 4: "directoryName", 5: "ediPartyName", 8: "registeredID"}
	if n, ok := names[g.tag]; ok {
		return n
	}
	return "GeneralName [" + strconv.Itoa(g.tag) + "]"
}

// subjectAltNames returns every name of leaf's subjectAltName extension.
// The x509 package keeps only the kinds it knows, and "exactly one" must
// count the others too.
func subjectAltNames(leaf *x509.Certificate) ([]generalName, error) {
	var raw []byte
	for _, e := range leaf.Extensions {
		if e.Id.Equal(oidSubjectAltName()) {
			raw = e.Value
		}
	}
	if raw == nil {
		return nil, nil
	}
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(raw, &seq)
	if err != nil {
		return nil, err
	}
	if len(rest) > 0 || seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, errors.New("not a SEQUENCE of GeneralName")
	}
	var names []generalName
	for data := seq.Bytes; len(data) > 0; {
		var gn asn1.RawValue
		if data, err = asn1.Unmarshal(data, &gn); err != nil {
			return nil, err
		}
		if gn.Class != asn1.ClassContextSpecific {
			return nil, errors.New("a GeneralName without a context-specific tag")
		}
		names = append(names, generalName{tag: gn.Tag, value: bytes.Clone(gn.Bytes)})
	}
	return names, nil
}
