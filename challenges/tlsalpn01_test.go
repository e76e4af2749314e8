package challenges

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

// alpnCert describes a tls-alpn-01 certificate to build.
type alpnCert struct {
	dnsNames []string
	ips      []string
	// ext is the acmeIdentifier extension; nil: the correct one for
	// testKeyAuth, critical. noExt leaves it out.
	ext   *pkix.Extension
	noExt bool
}

// acmeExt returns the acmeIdentifier extension holding value as DER.
func acmeExt(t testing.TB, critical bool, digest []byte) *pkix.Extension {
	t.Helper()
	der, err := asn1.Marshal(digest)
	if err != nil {
		t.Fatal(err)
	}
	return &pkix.Extension{Id: oidACMEIdentifier(), Critical: critical, Value: der}
}

// build makes the self-signed certificate an ACME client would serve
// (RFC 8737 §3), signed by key.
func (c alpnCert) build(t testing.TB, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "acme tls-alpn-01 test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     c.dnsNames,
	}
	for _, ip := range c.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	switch {
	case c.ext != nil:
		tmpl.ExtraExtensions = []pkix.Extension{*c.ext}
	case !c.noExt:
		sum := sha256.Sum256([]byte(testKeyAuth))
		tmpl.ExtraExtensions = []pkix.Extension{*acmeExt(t, true, sum[:])}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// alpnServer is a TLS server for tls-alpn-01 on loopback; it records the
// SNI of every handshake and how many connections it accepted.
type alpnServer struct {
	port int

	mu      sync.Mutex
	sni     []string
	accepts int
}

func (s *alpnServer) seen() (sni []string, accepts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sni...), s.accepts
}

// serveALPN serves cert on host ("127.0.0.1", "::1") at port (0: any),
// negotiating protos, until the test ends.
func serveALPN(t testing.TB, host string, port int, cert tls.Certificate, protos []string) *alpnServer {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	s := &alpnServer{port: l.Addr().(*net.TCPAddr).Port}
	cfg := &tls.Config{
		NextProtos:   protos,
		Certificates: []tls.Certificate{cert},
		// Called before ALPN is looked at, so the SNI is seen even when
		// the handshake then fails for want of a common protocol.
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = append(s.sni, hello.ServerName)
			s.mu.Unlock()
			return nil, nil
		},
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.accepts++
			s.mu.Unlock()
			wg.Go(func() {
				defer conn.Close()
				_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(conn, cfg)
				if tc.Handshake() == nil {
					// Wait for the validator to hang up: a tls-alpn-01
					// server sends nothing after the handshake.
					_, _ = tc.Read(make([]byte, 1))
				}
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return s
}

// listenable reports whether host can be listened on, for IPv6 tests on
// machines without ::1.
func listenable(host string) bool {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// noDial returns a dialer that fails the test on any dial, and refuses it:
// validation must not reach addresses it was told not to, and a test must
// never leave loopback even when the code under test is wrong.
func noDial(t *testing.T) *net.Dialer {
	t.Helper()
	return &net.Dialer{ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		t.Errorf("dialed %s", address)
		return errors.New("test: dialing is not allowed")
	}}
}

func TestTLSALPN01(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	res := NewResolver(startDNS(t, &testZone{}))
	sum := sha256.Sum256([]byte(testKeyAuth))
	wrong := sha256.Sum256([]byte("another key authorization"))
	alpn := []string{acmeTLSALPN}
	dnsID := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierDNS, Value: v} }
	ipID := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierIP, Value: v} }
	v4 := dnsID("v4.example.test")
	good := alpnCert{dnsNames: []string{"v4.example.test"}}

	tests := []struct {
		name    string
		id      acme.Identifier
		host    string // where the server listens; default 127.0.0.1
		cert    alpnCert
		protos  []string // the server's; default only acme-tls/1
		noALPN  bool     // the server negotiates no protocol at all
		cfg     Config   // Resolver and TLSALPNPort are filled in
		blocked bool     // no connection may be made
		wantSNI string   // default the identifier
		wantErr *acme.Problem
		want    []string
	}{
		{name: "good certificate", id: v4, cert: good},
		{name: "name in the certificate in upper case", id: v4, cert: alpnCert{dnsNames: []string{"V4.Example.Test"}}},
		{name: "IPv6 refused, falls back to IPv4", id: dnsID("dual.example.test"), cert: alpnCert{dnsNames: []string{"dual.example.test"}}},
		{
			name: "server without acme-tls/1", id: v4, cert: good, protos: []string{"h2", "http/1.1"},
			wantErr: acme.ErrTLS, want: []string{"127.0.0.1: ", "server did not negotiate acme-tls/1"},
		},
		{
			name: "server that negotiates nothing", id: v4, cert: good, noALPN: true,
			wantErr: acme.ErrTLS, want: []string{"server did not negotiate acme-tls/1", "none"},
		},
		{
			name: "extension missing", id: v4, cert: alpnCert{dnsNames: []string{"v4.example.test"}, noExt: true},
			wantErr: acme.ErrIncorrectResponse, want: []string{"127.0.0.1: Incorrect validation certificate", "no acmeIdentifier extension"},
		},
		{
			name: "extension not critical", id: v4, cert: alpnCert{dnsNames: []string{"v4.example.test"}, ext: acmeExt(t, false, sum[:])},
			wantErr: acme.ErrIncorrectResponse, want: []string{"acmeIdentifier extension", "not marked critical"},
		},
		{
			name: "wrong digest", id: v4, cert: alpnCert{dnsNames: []string{"v4.example.test"}, ext: acmeExt(t, true, wrong[:])},
			wantErr: acme.ErrIncorrectResponse, want: []string{"wrong value", "expected the SHA-256 digest of the key authorization"},
		},
		{
			name: "digest not wrapped in an OCTET STRING", id: v4,
			cert:    alpnCert{dnsNames: []string{"v4.example.test"}, ext: &pkix.Extension{Id: oidACMEIdentifier(), Critical: true, Value: sum[:]}},
			wantErr: acme.ErrIncorrectResponse, want: []string{"malformed", "DER OCTET STRING"},
		},
		{
			name: "digest too short", id: v4, cert: alpnCert{dnsNames: []string{"v4.example.test"}, ext: acmeExt(t, true, sum[:31])},
			wantErr: acme.ErrIncorrectResponse, want: []string{"malformed"},
		},
		{
			name: "two SANs", id: v4, cert: alpnCert{dnsNames: []string{"v4.example.test", "other.example.test"}},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"exactly one subjectAltName", `found 2: dNSName "v4.example.test", dNSName "other.example.test"`},
		},
		{
			name: "SAN for another name", id: v4, cert: alpnCert{dnsNames: []string{"other.example.test"}},
			wantErr: acme.ErrIncorrectResponse, want: []string{`dNSName "v4.example.test"; found 1: dNSName "other.example.test"`},
		},
		{
			name: "no SAN", id: v4, cert: alpnCert{},
			wantErr: acme.ErrIncorrectResponse, want: []string{"found none"},
		},
		{
			name: "IPv4 identifier with its IP SAN", id: ipID("127.0.0.1"), cert: alpnCert{ips: []string{"127.0.0.1"}},
			wantSNI: "1.0.0.127.in-addr.arpa",
		},
		{
			name: "IPv4 identifier with a dNSName", id: ipID("127.0.0.1"), cert: alpnCert{dnsNames: []string{"1.0.0.127.in-addr.arpa"}},
			wantSNI: "1.0.0.127.in-addr.arpa",
			wantErr: acme.ErrIncorrectResponse, want: []string{"iPAddress 127.0.0.1; found 1: dNSName"},
		},
		{
			name: "IPv4 identifier with another IP", id: ipID("127.0.0.1"), cert: alpnCert{ips: []string{"127.0.0.2"}},
			wantSNI: "1.0.0.127.in-addr.arpa",
			wantErr: acme.ErrIncorrectResponse, want: []string{"found 1: iPAddress 127.0.0.2"},
		},
		{
			name: "IPv6 identifier with its IP SAN", id: ipID("::1"), host: "::1", cert: alpnCert{ips: []string{"::1"}},
			wantSNI: "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa",
		},
		{
			name: "DNS identifier with an IP SAN", id: v4, cert: alpnCert{ips: []string{"127.0.0.1"}},
			wantErr: acme.ErrIncorrectResponse, want: []string{"found 1: iPAddress 127.0.0.1"},
		},
		{
			name: "blocked IP identifier", id: ipID("127.0.0.2"), host: "127.0.0.2", cert: alpnCert{ips: []string{"127.0.0.2"}},
			cfg: Config{BlockedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, blocked: true,
			wantErr: acme.ErrConnection, want: []string{"127.0.0.2 is in a network validation may not connect to (127.0.0.2/32)"},
		},
		{
			name: "name resolving to a blocked address", id: dnsID("blocked.example.test"), host: "127.0.0.2", cert: alpnCert{dnsNames: []string{"blocked.example.test"}},
			cfg: Config{BlockedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")}}, blocked: true,
			wantErr: acme.ErrConnection, want: []string{"Connecting to blocked.example.test:", "127.0.0.2 is in a network validation may not connect to (127.0.0.0/30)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			host := tc.host
			if host == "" {
				host = "127.0.0.1"
			}
			if !listenable(host) {
				t.Skipf("cannot listen on %s", host)
			}
			protos := tc.protos
			switch {
			case tc.noALPN:
				protos = nil
			case protos == nil:
				protos = alpn
			}
			srv := serveALPN(t, host, 0, tc.cert.build(t, key), protos)
			cfg := tc.cfg
			cfg.Resolver, cfg.TLSALPNPort = res, srv.port
			if tc.blocked {
				cfg.Dialer = noDial(t)
			}

			err := validateErr(New(cfg), t.Context(), acme.ChallengeTLSALPN01, tc.id, testToken, testKeyAuth)
			checkProblem(t, err, tc.wantErr, tc.id, tc.want, nil)

			sni, accepts := srv.seen()
			switch {
			case tc.blocked:
				if accepts != 0 {
					t.Errorf("server accepted %d connections, want none", accepts)
				}
			default:
				want := tc.wantSNI
				if want == "" {
					want = tc.id.Value
				}
				if len(sni) != 1 || sni[0] != want {
					t.Errorf("SNI = %q, want [%q]", sni, want)
				}
			}
		})
	}
}

// TestTLSALPN01Connect covers what happens before a certificate is seen.
func TestTLSALPN01Connect(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
	tests := []struct {
		name    string
		port    func(t testing.TB) int
		cfg     Config
		wantErr *acme.Problem
		want    []string
	}{
		{
			name: "nothing listening", port: closedPort,
			wantErr: acme.ErrConnection, want: []string{"127.0.0.1: Connecting to v4.example.test:", "for tls-alpn-01: Connection refused"},
		},
		{
			name: "plain http on the port", port: func(t testing.TB) int { return serve(t, respond(testKeyAuth)) },
			wantErr: acme.ErrTLS, want: []string{"127.0.0.1: ", "TLS handshake failed", "did not answer with TLS"},
		},
		{
			name: "server never completes the handshake", port: silentTCP,
			cfg:     Config{Timeout: 300 * time.Millisecond},
			wantErr: acme.ErrConnection, want: []string{"TLS handshake timeout"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Resolver, cfg.TLSALPNPort = res, tc.port(t)
			err := validateErr(New(cfg), t.Context(), acme.ChallengeTLSALPN01, id, testToken, testKeyAuth)
			checkProblem(t, err, tc.wantErr, id, tc.want, nil)
		})
	}
}

// silentTCP accepts connections on a loopback port and never writes to
// them, until the test ends.
func silentTCP(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer conn.Close()
				<-done
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}
