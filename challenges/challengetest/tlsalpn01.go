package challengetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ACMETLS1Protocol is the ALPN protocol of tls-alpn-01 (RFC 8737).
const ACMETLS1Protocol = "acme-tls/1"

// TLSALPN01 answers tls-alpn-01 challenges: a handshake offering
// acme-tls/1 with a server name it was given gets that name's challenge
// certificate; any other handshake fails.
type TLSALPN01 struct {
	Addr string // host:port it listens on
	Port int

	ln   net.Listener
	conf *tls.Config
	wg   sync.WaitGroup

	mu     sync.Mutex
	certs  map[string]*tls.Certificate // by server name, see sniKey
	conns  map[net.Conn]struct{}
	closed bool
}

// ListenTLSALPN01 starts the responder on addr.
func ListenTLSALPN01(addr string) (*TLSALPN01, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	a := &TLSALPN01{
		Addr:  ln.Addr().String(),
		Port:  ln.Addr().(*net.TCPAddr).Port,
		ln:    ln,
		certs: map[string]*tls.Certificate{},
		conns: map[net.Conn]struct{}{},
	}
	a.conf = &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{ACMETLS1Protocol},
		GetCertificate: a.certificate,
		// The validator hangs up after the handshake; a ticket is wasted.
		SessionTicketsDisabled: true,
	}
	a.wg.Add(1)
	go a.serve()
	return a, nil
}

// StartTLSALPN01 starts the responder on 127.0.0.1 and stops it when the
// test ends.
func StartTLSALPN01(t testing.TB) *TLSALPN01 {
	t.Helper()
	a, err := ListenTLSALPN01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// Close stops the responder and ends the handshakes in progress.
func (a *TLSALPN01) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	err := a.ln.Close()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.wg.Wait()
	return err
}

func (a *TLSALPN01) serve() {
	defer a.wg.Done()
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return
		}
		a.mu.Lock()
		if a.closed {
			a.mu.Unlock()
			c.Close()
			return
		}
		a.conns[c] = struct{}{}
		a.wg.Add(1)
		a.mu.Unlock()
		go a.handshake(c)
	}
}

// handshake is all a tls-alpn-01 connection carries (RFC 8737 section 3:
// the client closes it once the handshake completes).
func (a *TLSALPN01) handshake(c net.Conn) {
	defer a.wg.Done()
	defer func() {
		a.mu.Lock()
		delete(a.conns, c)
		a.mu.Unlock()
		c.Close()
	}()
	_ = c.SetDeadline(time.Now().Add(ioTimeout))
	_ = tls.Server(c, a.conf).Handshake()
}

func (a *TLSALPN01) certificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if !slices.Contains(hello.SupportedProtos, ACMETLS1Protocol) {
		return nil, errors.New("tls-alpn-01: client did not offer " + ACMETLS1Protocol)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	cert, ok := a.certs[sniKey(hello.ServerName)]
	if !ok {
		return nil, fmt.Errorf("tls-alpn-01: no challenge for server name %q", hello.ServerName)
	}
	return cert, nil
}

// Set makes the responder answer identifier's challenge with
// keyAuthorization. identifier is a DNS name, or an IP address, which a
// validator sends as its reverse-DNS name (RFC 8738 section 6) and which
// the certificate then names as an iPAddress.
func (a *TLSALPN01) Set(identifier, keyAuthorization string) error {
	key, tmpl, err := identifierCertificate(identifier)
	if err != nil {
		return err
	}
	cert, err := challengeCertificate(tmpl, keyAuthorization)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.certs[key] = cert
	return nil
}

// Delete makes handshakes for identifier fail again.
func (a *TLSALPN01) Delete(identifier string) {
	key := sniKey(identifier)
	if ip, err := netip.ParseAddr(identifier); err == nil {
		key = ReverseName(ip)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.certs, key)
}

// sniKey is how server names are stored: TLS sends them without the root
// dot, and they compare case-insensitively.
func sniKey(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// ReverseName is the name under which ip is looked up in reverse DNS, and
// the server name a tls-alpn-01 validator sends for an IP identifier, e.g.
// "1.0.0.127.in-addr.arpa" for 127.0.0.1. It has no trailing dot, as in
// TLS, and is empty for the zero Addr.
func ReverseName(ip netip.Addr) string {
	ip = ip.Unmap()
	var b strings.Builder
	switch {
	case ip.Is4():
		a := ip.As4()
		fmt.Fprintf(&b, "%d.%d.%d.%d.in-addr.arpa", a[3], a[2], a[1], a[0])
	case ip.Is6():
		a := ip.As16()
		const hex = "0123456789abcdef"
		for i := len(a) - 1; i >= 0; i-- {
			b.WriteByte(hex[a[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hex[a[i]>>4])
			b.WriteByte('.')
		}
		b.WriteString("ip6.arpa")
	}
	return b.String()
}

// identifierCertificate returns the server name identifier is asked for
// under and a certificate template naming it.
func identifierCertificate(identifier string) (string, *x509.Certificate, error) {
	if ip, err := netip.ParseAddr(identifier); err == nil {
		if ip.Zone() != "" {
			return "", nil, fmt.Errorf("tls-alpn-01: IP identifier %q has a zone", identifier)
		}
		ip = ip.Unmap()
		return ReverseName(ip), &x509.Certificate{IPAddresses: []net.IP{ip.AsSlice()}}, nil
	}
	name := sniKey(identifier)
	if !isHostname(name) {
		return "", nil, fmt.Errorf("tls-alpn-01: %q is not a DNS name or IP address", identifier)
	}
	return name, &x509.Certificate{DNSNames: []string{name}}, nil
}

// isHostname reports whether name can be a server name and a dNSName:
// dot-separated labels of letters, digits, hyphens (and underscores, which
// some test names use). DNS itself would allow far more.
func isHostname(name string) bool {
	if len(name) == 0 || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// challengeCertificate signs the RFC 8737 certificate: self-signed, naming
// only the identifier, with the critical acmeIdentifier extension holding
// SHA-256(keyAuthorization). No subject, so the identifier is the only name
// a validator can find. A fresh key each time keeps challenges apart.
func challengeCertificate(tmpl *x509.Certificate, keyAuthorization string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256([]byte(keyAuthorization))
	value, err := asn1.Marshal(digest[:])
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = serial
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(7 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.BasicConstraintsValid = true
	tmpl.ExtraExtensions = []pkix.Extension{{
		Id:       asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}, // id-pe-acmeIdentifier
		Critical: true,
		Value:    value,
	}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
