package challengetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// handshake connects to a offering protos and returns the server's
// certificate.
func handshake(t *testing.T, a *TLSALPN01, serverName string, protos ...string) (*x509.Certificate, error) {
	t.Helper()
	conf := &tls.Config{
		ServerName: serverName,
		NextProtos: protos,
		// The certificate is self-signed by design; the test checks it.
		InsecureSkipVerify: true,
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a.Addr, conf)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	state := conn.ConnectionState()
	if state.NegotiatedProtocol != ACMETLS1Protocol {
		t.Errorf("negotiated %q, want %q", state.NegotiatedProtocol, ACMETLS1Protocol)
	}
	if len(state.PeerCertificates) != 1 {
		t.Fatalf("got %d certificates, want 1", len(state.PeerCertificates))
	}
	return state.PeerCertificates[0], nil
}

// checkChallengeCert checks cert as RFC 8737 section 3 asks a validator to.
func checkChallengeCert(t *testing.T, cert *x509.Certificate, dnsNames []string, ips []net.IP, keyAuth string) {
	t.Helper()
	if !slices.Equal(cert.DNSNames, dnsNames) {
		t.Errorf("dNSName SANs %q, want %q", cert.DNSNames, dnsNames)
	}
	if !slices.EqualFunc(cert.IPAddresses, ips, net.IP.Equal) {
		t.Errorf("iPAddress SANs %v, want %v", cert.IPAddresses, ips)
	}
	if len(cert.EmailAddresses)+len(cert.URIs) > 0 || cert.Subject.CommonName != "" {
		t.Errorf("certificate names more than the identifier: %v %v %q", cert.EmailAddresses, cert.URIs, cert.Subject.CommonName)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if key, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || key.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", cert.PublicKey)
	}
	acmeIdentifier := asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}
	var found int
	for _, ext := range cert.Extensions {
		if !ext.Id.Equal(acmeIdentifier) {
			continue
		}
		found++
		if !ext.Critical {
			t.Error("acmeIdentifier extension is not critical")
		}
		var digest []byte
		rest, err := asn1.Unmarshal(ext.Value, &digest)
		if err != nil || len(rest) > 0 {
			t.Fatalf("acmeIdentifier value is not one OCTET STRING: %v", err)
		}
		want := sha256.Sum256([]byte(keyAuth))
		if !slices.Equal(digest, want[:]) {
			t.Errorf("acmeIdentifier digest %x, want %x", digest, want)
		}
	}
	if found != 1 {
		t.Errorf("%d acmeIdentifier extensions, want 1", found)
	}
}

func TestTLSALPN01(t *testing.T) {
	a := StartTLSALPN01(t)
	tests := []struct {
		identifier string
		serverName string
		dnsNames   []string
		ips        []net.IP
	}{
		{"example.test", "example.test", []string{"example.test"}, nil},
		{"Mixed.Example.TEST.", "mixed.example.test", []string{"mixed.example.test"}, nil},
		{"127.0.0.1", "1.0.0.127.in-addr.arpa", nil, []net.IP{net.ParseIP("127.0.0.1")}},
		{"::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa", nil, []net.IP{net.ParseIP("::1")}},
	}
	for _, tt := range tests {
		t.Run(tt.identifier, func(t *testing.T) {
			keyAuth := "token-" + tt.identifier + ".thumbprint"
			if err := a.Set(tt.identifier, keyAuth); err != nil {
				t.Fatal(err)
			}
			cert, err := handshake(t, a, tt.serverName, "h2", ACMETLS1Protocol)
			if err != nil {
				t.Fatal(err)
			}
			checkChallengeCert(t, cert, tt.dnsNames, tt.ips, keyAuth)

			// A validator may send the name in any case.
			if _, err := handshake(t, a, strings.ToUpper(tt.serverName), ACMETLS1Protocol); err != nil {
				t.Errorf("upper-case server name: %v", err)
			}

			a.Delete(tt.identifier)
			if _, err := handshake(t, a, tt.serverName, ACMETLS1Protocol); err == nil {
				t.Error("handshake succeeded after Delete")
			}
		})
	}
}

func TestTLSALPN01Refuses(t *testing.T) {
	a := StartTLSALPN01(t)
	if err := a.Set("example.test", "k"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		serverName string
		protos     []string
	}{
		{"no ALPN", "example.test", nil},
		{"only http/1.1", "example.test", []string{"http/1.1"}},
		{"unknown server name", "other.test", []string{ACMETLS1Protocol}},
		{"no server name", "", []string{ACMETLS1Protocol}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := handshake(t, a, tt.serverName, tt.protos...); err == nil {
				t.Fatal("handshake succeeded")
			}
		})
	}
}

func TestTLSALPN01SetErrors(t *testing.T) {
	a := StartTLSALPN01(t)
	for _, identifier := range []string{"", "fe80::1%eth0", "bad..name", "white space.test"} {
		t.Run(identifier, func(t *testing.T) {
			if err := a.Set(identifier, "k"); err == nil {
				t.Fatalf("Set(%q) succeeded", identifier)
			}
		})
	}
}

func TestTLSALPN01FreshKey(t *testing.T) {
	a := StartTLSALPN01(t)
	var keys []*ecdsa.PublicKey
	for range 2 {
		if err := a.Set("example.test", "k"); err != nil {
			t.Fatal(err)
		}
		cert, err := handshake(t, a, "example.test", ACMETLS1Protocol)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, cert.PublicKey.(*ecdsa.PublicKey))
	}
	if keys[0].Equal(keys[1]) {
		t.Fatal("Set reused the key")
	}
}

func TestReverseName(t *testing.T) {
	tests := []struct {
		ip   string
		want string
	}{
		{"127.0.0.1", "1.0.0.127.in-addr.arpa"},
		{"192.0.2.10", "10.2.0.192.in-addr.arpa"},
		{"::ffff:192.0.2.10", "10.2.0.192.in-addr.arpa"},
		{"2001:db8::abcd", "d.c.b.a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			if got := ReverseName(ip); got != tt.want {
				t.Fatalf("ReverseName(%s) = %q, want %q", tt.ip, got, tt.want)
			}
			// The same as miekg/dns, which DNS-side code uses.
			if want, err := dns.ReverseAddr(ip.Unmap().String()); err != nil || want != tt.want+"." {
				t.Fatalf("dns.ReverseAddr = %q, %v", want, err)
			}
		})
	}
	if got := ReverseName(netip.Addr{}); got != "" {
		t.Fatalf("ReverseName(zero) = %q", got)
	}
}

func TestTLSALPN01Close(t *testing.T) {
	a, err := ListenTLSALPN01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", a.Addr, 5*time.Second); err == nil {
		conn.Close()
		t.Fatal("responder still accepts after Close")
	}
}
