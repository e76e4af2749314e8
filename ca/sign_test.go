package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

func ecKey(t testing.TB, c elliptic.Curve) crypto.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func rsaKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func edKey(t testing.TB) crypto.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// validRequest is valid under a CA initialised at epoch.
func validRequest(pub crypto.PublicKey) ca.Request {
	return ca.Request{
		PublicKey:   pub,
		DNSNames:    []string{"example.test", "www.example.test"},
		IPAddresses: []net.IP{net.ParseIP("192.0.2.7"), net.ParseIP("2001:db8::7")},
		CommonName:  "example.test",
		NotBefore:   epoch.Add(time.Hour),
		NotAfter:    epoch.Add(time.Hour + 7*24*time.Hour),
	}
}

func TestSignVerifies(t *testing.T) {
	l, dir := newCA(t, ca.Config{Now: fixedNow(epoch)})
	inter := readCertFile(t, filepath.Join(dir, ca.IntermediateCertFile))

	tests := []struct {
		name  string
		pub   crypto.PublicKey
		usage x509.KeyUsage
	}{
		{"ECDSA P-256", ecKey(t, elliptic.P256()), x509.KeyUsageDigitalSignature},
		{"ECDSA P-384", ecKey(t, elliptic.P384()), x509.KeyUsageDigitalSignature},
		{"RSA 2048", rsaKey(t), x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment},
		{"Ed25519", edKey(t), x509.KeyUsageDigitalSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(tt.pub)
			iss, err := l.Sign(context.Background(), req)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			leaf := iss.Leaf

			chain := parsePEMCerts(t, iss.ChainPEM)
			if len(chain) != 2 || !chain[0].Equal(leaf) || !chain[1].Equal(inter) {
				t.Fatalf("ChainPEM is not leaf then intermediate (%d certificates)", len(chain))
			}
			inters := x509.NewCertPool()
			inters.AddCert(chain[1])
			for _, name := range []string{"example.test", "www.example.test", "192.0.2.7", "2001:db8::7"} {
				for _, eku := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
					_, err := leaf.Verify(x509.VerifyOptions{
						DNSName:       name,
						Roots:         rootPool(l),
						Intermediates: inters,
						CurrentTime:   req.NotBefore.Add(time.Minute),
						KeyUsages:     []x509.ExtKeyUsage{eku},
					})
					if err != nil {
						t.Errorf("Verify(%s, EKU %v): %v", name, eku, err)
					}
				}
			}

			if !leaf.NotBefore.Equal(req.NotBefore) || !leaf.NotAfter.Equal(req.NotAfter) {
				t.Errorf("validity %v..%v, want %v..%v", leaf.NotBefore, leaf.NotAfter, req.NotBefore, req.NotAfter)
			}
			if leaf.KeyUsage != tt.usage {
				t.Errorf("KeyUsage %v, want %v", leaf.KeyUsage, tt.usage)
			}
			if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(leaf.ExtKeyUsage, want) {
				t.Errorf("ExtKeyUsage %v, want %v", leaf.ExtKeyUsage, want)
			}
			if !leaf.BasicConstraintsValid || leaf.IsCA {
				t.Errorf("BasicConstraintsValid=%v IsCA=%v, want CA:false", leaf.BasicConstraintsValid, leaf.IsCA)
			}
			if !slices.Equal(leaf.DNSNames, req.DNSNames) {
				t.Errorf("DNSNames %v, want %v", leaf.DNSNames, req.DNSNames)
			}
			if !slices.EqualFunc(leaf.IPAddresses, req.IPAddresses, net.IP.Equal) {
				t.Errorf("IPAddresses %v, want %v", leaf.IPAddresses, req.IPAddresses)
			}
			if leaf.Subject.CommonName != "example.test" {
				t.Errorf("CommonName %q", leaf.Subject.CommonName)
			}
			if len(leaf.SubjectKeyId) != 20 {
				t.Errorf("SubjectKeyId %x, want 20 bytes", leaf.SubjectKeyId)
			}
			if len(inter.SubjectKeyId) == 0 || !bytes.Equal(leaf.AuthorityKeyId, inter.SubjectKeyId) {
				t.Errorf("AuthorityKeyId %x, want intermediate's %x", leaf.AuthorityKeyId, inter.SubjectKeyId)
			}
			// The serial's octets in hex, as openssl prints them
			// (but in lower case).
			if want := hex.EncodeToString(leaf.SerialNumber.Bytes()); iss.Serial != want {
				t.Errorf("Serial %q, want %q", iss.Serial, want)
			}
			if !leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.pub) {
				t.Error("leaf does not carry the requested key")
			}
		})
	}
}

func TestSignCommonName(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	pub := ecKey(t, elliptic.P256())
	long := strings.Repeat("a", 60) + ".test" // 65 bytes, over the X.509 bound

	tests := []struct {
		name string
		cn   string
		dns  []string
		want string
	}{
		{"among DNS names", "www.example.test", nil, "www.example.test"},
		{"differs in case only", "WWW.Example.test", nil, "WWW.Example.test"},
		{"IP among IP addresses", "2001:db8:0::7", nil, "2001:db8:0::7"},
		{"not among SANs", "other.test", nil, ""},
		{"IP not among SANs", "192.0.2.8", nil, ""},
		{"empty", "", nil, ""},
		{"too long", long, []string{long}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(pub)
			req.CommonName = tt.cn
			req.DNSNames = append(req.DNSNames, tt.dns...)
			iss, err := l.Sign(context.Background(), req)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got := iss.Leaf.Subject.CommonName; got != tt.want {
				t.Errorf("CommonName %q, want %q", got, tt.want)
			}
		})
	}
}

// RFC 5280 §4.2.1.6: with an empty subject the SAN extension is critical.
func TestSignEmptySubjectMakesSANCritical(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	req := validRequest(ecKey(t, elliptic.P256()))
	req.CommonName = ""
	iss, err := l.Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	sanOID := asn1.ObjectIdentifier{2, 5, 29, 17}
	i := slices.IndexFunc(iss.Leaf.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(sanOID) })
	if i < 0 || !iss.Leaf.Extensions[i].Critical {
		t.Error("SAN extension missing or not critical")
	}
}

func TestSignRejects(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	pub := ecKey(t, elliptic.P256())

	tests := []struct {
		name   string
		modify func(*ca.Request)
	}{
		{"no key", func(r *ca.Request) { r.PublicKey = nil }},
		{"unsupported key", func(r *ca.Request) { r.PublicKey = struct{}{} }},
		{"no SANs", func(r *ca.Request) { r.DNSNames, r.IPAddresses = nil, nil }},
		{"zero NotBefore", func(r *ca.Request) { r.NotBefore = time.Time{} }},
		{"zero NotAfter", func(r *ca.Request) { r.NotAfter = time.Time{} }},
		{"NotAfter before NotBefore", func(r *ca.Request) { r.NotAfter = r.NotBefore.Add(-time.Second) }},
		{"NotAfter equals NotBefore", func(r *ca.Request) { r.NotAfter = r.NotBefore }},
		{"outlives intermediate", func(r *ca.Request) { r.NotAfter = epoch.AddDate(5, 0, 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := validRequest(pub)
			tt.modify(&req)
			if iss, err := l.Sign(context.Background(), req); err == nil {
				t.Errorf("Sign succeeded: serial %s", iss.Serial)
			}
		})
	}
}

func TestSignHonoursContext(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Sign(ctx, validRequest(ecKey(t, elliptic.P256())))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Sign with cancelled context: %v, want context.Canceled", err)
	}
}

func TestSignSerials(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	req := validRequest(ecKey(t, elliptic.P256()))

	const workers, perWorker = 8, 128
	serials := make(chan *ca.Issued, workers*perWorker)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range perWorker {
				iss, err := l.Sign(context.Background(), req)
				if err != nil {
					errs <- err
					return
				}
				serials <- iss
			}
		})
	}
	wg.Wait()
	close(serials)
	close(errs)
	for err := range errs {
		t.Fatalf("Sign: %v", err)
	}

	seen := map[string]bool{}
	for iss := range serials {
		n := iss.Leaf.SerialNumber
		if n.Sign() <= 0 || n.BitLen() > 127 {
			t.Errorf("serial %s: sign %d, %d bits; want positive, at most 127 bits", iss.Serial, n.Sign(), n.BitLen())
		}
		if len(iss.Serial)%2 != 0 || iss.Serial != strings.ToLower(iss.Serial) || iss.Serial != hex.EncodeToString(n.Bytes()) {
			t.Errorf("Serial %q is not the even-length lower-case hex of %s", iss.Serial, n)
		}
		if seen[iss.Serial] {
			t.Errorf("serial %s issued twice", iss.Serial)
		}
		seen[iss.Serial] = true
	}
	if len(seen) != workers*perWorker {
		t.Errorf("%d distinct serials, want %d", len(seen), workers*perWorker)
	}
}

func TestSignBrokenRand(t *testing.T) {
	_, dir := newCA(t, ca.Config{Now: fixedNow(epoch)})
	l, err := ca.Load(dir, ca.Config{Now: fixedNow(epoch), Rand: zeroReader{}})
	if err != nil {
		t.Fatal(err)
	}
	if iss, err := l.Sign(context.Background(), validRequest(ecKey(t, elliptic.P256()))); err == nil {
		t.Errorf("Sign with an all-zero random source issued serial %q", iss.Serial)
	}
}

func TestServerCertificate(t *testing.T) {
	l, dir := newCA(t, ca.Config{Now: fixedNow(epoch)})
	inter := readCertFile(t, filepath.Join(dir, ca.IntermediateCertFile))

	cert, err := l.ServerCertificate([]string{"localhost", "127.0.0.1", "::1"})
	if err != nil {
		t.Fatalf("ServerCertificate: %v", err)
	}
	if len(cert.Certificate) != 2 || !bytes.Equal(cert.Certificate[1], inter.Raw) {
		t.Fatalf("chain has %d certificates, want leaf and intermediate", len(cert.Certificate))
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(cert.Leaf) {
		t.Error("Leaf differs from Certificate[0]")
	}
	key, ok := cert.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
		t.Errorf("private key %T does not match the leaf or is not P-256", cert.PrivateKey)
	}
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) {
		t.Errorf("DNSNames %v, want [localhost]", leaf.DNSNames)
	}
	if want := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")}; !slices.EqualFunc(leaf.IPAddresses, want, net.IP.Equal) {
		t.Errorf("IPAddresses %v, want %v", leaf.IPAddresses, want)
	}
	if wantNB, wantNA := epoch.Add(-time.Minute), epoch.Add(90*24*time.Hour); !leaf.NotBefore.Equal(wantNB) || !leaf.NotAfter.Equal(wantNA) {
		t.Errorf("validity %v..%v, want %v..%v", leaf.NotBefore, leaf.NotAfter, wantNB, wantNA)
	}

	inters := x509.NewCertPool()
	inters.AddCert(inter)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		t.Run(host, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{
				DNSName:       host,
				Roots:         rootPool(l),
				Intermediates: inters,
				CurrentTime:   epoch,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				t.Errorf("Verify: %v", err)
			}
		})
	}
	if err := leaf.VerifyHostname("example.test"); err == nil {
		t.Error("certificate verifies for a host it does not name")
	}
}

// A real TLS handshake, with the real clock, proves the chain is what a Go
// client needs when it trusts only the root.
func TestServerCertificateHandshake(t *testing.T) {
	l, _ := newCA(t, ca.Config{})
	cert, err := l.ServerCertificate([]string{"[::1]", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "::1"} {
		t.Run(name, func(t *testing.T) {
			c, s := net.Pipe()
			t.Cleanup(func() { c.Close(); s.Close() })
			server := tls.Server(s, &tls.Config{Certificates: []tls.Certificate{cert}})
			client := tls.Client(c, &tls.Config{ServerName: name, RootCAs: rootPool(l)})
			serverErr := make(chan error, 1)
			go func() { serverErr <- server.Handshake() }()
			if err := client.Handshake(); err != nil {
				t.Fatalf("client handshake: %v", err)
			}
			if err := <-serverErr; err != nil {
				t.Fatalf("server handshake: %v", err)
			}
		})
	}
}

func TestServerCertificateRejects(t *testing.T) {
	l, _ := newCA(t, ca.Config{})
	for _, hosts := range [][]string{nil, {""}, {"localhost", "[]"}} {
		if _, err := l.ServerCertificate(hosts); err == nil {
			t.Errorf("ServerCertificate(%q) succeeded", hosts)
		}
	}
}

func TestRootPEMIsACopy(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	b := l.RootPEM()
	clear(b)
	onDisk, err := os.ReadFile(filepath.Join(dir, ca.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(l.RootPEM(), onDisk) {
		t.Error("modifying the returned slice changed the CA's root PEM")
	}
}

func BenchmarkSign(b *testing.B) {
	l, _ := newCA(b, ca.Config{Now: fixedNow(epoch)})
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	req := validRequest(k.Public())
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.Sign(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// An intermediate that ends within the 90 days acmed's HTTPS certificate
// would last (an imported one may): the HTTPS certificate ends with it
// instead of failing the start.
func TestServerCertificateShortIntermediate(t *testing.T) {
	_, dir := newCA(t, ca.Config{Now: fixedNow(epoch)})
	inter := readCertFile(t, filepath.Join(dir, ca.IntermediateCertFile))
	late, err := ca.Load(dir, ca.Config{Now: fixedNow(inter.NotAfter.Add(-30 * 24 * time.Hour))})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := late.ServerCertificate([]string{"localhost"})
	if err != nil {
		t.Fatalf("ServerCertificate with 30 days of intermediate left: %v", err)
	}
	if !cert.Leaf.NotAfter.Equal(inter.NotAfter) {
		t.Fatalf("HTTPS certificate ends %s, want the intermediate's end %s", cert.Leaf.NotAfter, inter.NotAfter)
	}
}
