package ca_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/crosstest"
)

func TestLoadAlternates(t *testing.T) {
	l, dir := newCA(t, ca.Config{})
	inter := l.Intermediate()
	cross := crosstest.NewRoot(t, "Cross Root X1")
	other := crosstest.NewRoot(t, "Other Root")
	crossInt := cross.CrossSign(t, inter)
	files := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		return crosstest.WriteBundle(t, files, name, certs...)
	}

	otherKey := crosstest.Template(t, inter)
	wrongSubject := crosstest.Template(t, inter)
	wrongSubject.RawSubject = nil
	wrongSubject.Subject = pkix.Name{CommonName: "not acmed"}
	expired := crosstest.Template(t, inter)
	expired.NotBefore, expired.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	notCA := crosstest.Template(t, inter)
	notCA.IsCA, notCA.KeyUsage, notCA.MaxPathLenZero = false, x509.KeyUsageDigitalSignature, false
	keyFile := filepath.Join(files, "key.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(files, "empty.pem")
	if err := os.WriteFile(empty, []byte("no PEM here\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	crossOnly := write("cross.pem", crossInt)

	tests := []struct {
		name  string
		files []string
		want  []string // in the error; none: success
	}{
		{"cross-signed intermediate", []string{crossOnly}, nil},
		{"with its root", []string{write("with-root.pem", crossInt, cross.Cert)}, nil},
		{"two roots", []string{crossOnly, write("other.pem", other.CrossSign(t, inter))}, nil},
		{"another key", []string{write("other-key.pem", cross.Sign(t, otherKey, ecKey(t, elliptic.P256())))},
			[]string{"other-key.pem", "has the subject of issuer", "but another public key"}},
		{"another subject", []string{write("other-subject.pem", cross.Sign(t, wrongSubject, inter.PublicKey))},
			[]string{"other-subject.pem", "has the public key of issuer", `but the subject "CN=not acmed"`}},
		{"neither", []string{write("neither.pem", other.Cert)},
			[]string{"neither.pem", "neither the subject nor the public key of an issuer", inter.Subject.CommonName}},
		{"the issuer itself", []string{filepath.Join(dir, ca.IntermediateCertFile)},
			[]string{ca.IntermediateCertFile, "is the issuer", "not a cross-signed version"}},
		{"not signed by the next", []string{write("order.pem", crossInt, other.Cert)},
			[]string{"order.pem", "certificate 1", "is not signed by certificate 2", "Other Root"}},
		{"expired", []string{write("expired.pem", cross.Sign(t, expired, inter.PublicKey))},
			[]string{"expired.pem", "certificate 1", "expired at"}},
		{"another root above", []string{write("wrong-root.pem", crossInt, l.Root())},
			[]string{"wrong-root.pem", "is not signed by certificate 2"}},
		{"not a CA", []string{write("not-ca.pem", cross.Sign(t, notCA, inter.PublicKey))},
			[]string{"not-ca.pem", "not a CA certificate allowed to sign"}},
		{"a private key", []string{keyFile}, []string{"key.pem", "block 1 is PRIVATE KEY PEM"}},
		{"no PEM", []string{empty}, []string{"empty.pem", "no CERTIFICATE PEM block"}},
		{"missing", []string{filepath.Join(files, "absent.pem")}, []string{"absent.pem", "no such file"}},
		{"twice", []string{crossOnly, crossOnly}, []string{"the same chain as --alternate-chain " + crossOnly}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ca.LoadAlternates(tt.files, []*x509.Certificate{inter}, ca.Config{})
			if tt.want == nil {
				if err != nil {
					t.Fatalf("LoadAlternates: %v", err)
				}
				if a.Len() != len(tt.files) {
					t.Errorf("Len %d, want %d", a.Len(), len(tt.files))
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadAlternates accepted %v", tt.files)
			}
			msg := err.Error()
			t.Log(msg)
			if strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "ca: --alternate-chain ") {
				t.Errorf("error is not one line naming the flag: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
		})
	}
}

func TestAlternateChains(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	cfg := ca.Config{Now: func() time.Time { return now }}
	l, _ := newCA(t, cfg)
	inter := l.Intermediate()
	x1, x2 := crosstest.NewRoot(t, "Cross Root X1"), crosstest.NewRoot(t, "Cross Root X2")
	files := t.TempDir()
	short := crosstest.Template(t, inter)
	short.NotAfter = now.Add(time.Hour)
	b1 := crosstest.WriteBundle(t, files, "x1.pem", x1.CrossSign(t, inter), x1.Cert)
	b2 := crosstest.WriteBundle(t, files, "x2.pem", x2.Sign(t, short, inter.PublicKey))
	var serveAt time.Time
	alts, err := ca.LoadAlternates([]string{b1, b2}, []*x509.Certificate{inter}, ca.Config{Now: func() time.Time {
		if serveAt.IsZero() {
			return now
		}
		return serveAt
	}})
	if err != nil {
		t.Fatal(err)
	}
	issued, err := l.Sign(context.Background(), ca.Request{
		PublicKey: ecKey(t, elliptic.P256()), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	stranger, _ := newCA(t, cfg)
	strangerIssued, err := stranger.Sign(context.Background(), ca.Request{
		PublicKey: ecKey(t, elliptic.P256()), DNSNames: []string{"a.example"}, NotBefore: now, NotAfter: now.Add(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		alts   *ca.Alternates
		chain  []byte
		at     time.Time
		roots  []*x509.Certificate // each chain must verify to one, in order
		length []int               // certificates in each chain
	}{
		{"both", alts, issued.ChainPEM, now, []*x509.Certificate{x1.Cert, x2.Cert}, []int{3, 2}},
		{"expired since start-up", alts, issued.ChainPEM, now.Add(2 * time.Hour), []*x509.Certificate{x1.Cert}, []int{3}},
		{"DER, not PEM", alts, issued.Leaf.Raw, now, nil, nil},
		{"another CA's leaf", alts, strangerIssued.ChainPEM, now, nil, nil},
		{"not PEM", alts, []byte("garbage"), now, nil, nil},
		{"none configured", nil, issued.ChainPEM, now, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serveAt = tt.at
			got := tt.alts.Chains(tt.chain)
			if len(got) != len(tt.roots) {
				t.Fatalf("%d chains, want %d", len(got), len(tt.roots))
			}
			for i, pemChain := range got {
				certs := parsePEMCerts(t, pemChain)
				if len(certs) != tt.length[i] {
					t.Errorf("chain %d: %d certificates, want %d", i, len(certs), tt.length[i])
				}
				if !certs[0].Equal(issued.Leaf) {
					t.Fatalf("chain %d does not start with the leaf", i)
				}
				roots, inters := x509.NewCertPool(), x509.NewCertPool()
				roots.AddCert(tt.roots[i])
				for _, c := range certs[1:] {
					inters.AddCert(c)
				}
				if _, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, CurrentTime: now}); err != nil {
					t.Errorf("chain %d does not verify to %s: %v", i, tt.roots[i].Subject, err)
				}
				// lego --preferred-chain matches the issuer of the topmost certificate.
				if top := certs[len(certs)-1]; top.Issuer.CommonName != tt.roots[i].Subject.CommonName {
					t.Errorf("chain %d: topmost issuer %q, want %q", i, top.Issuer.CommonName, tt.roots[i].Subject.CommonName)
				}
			}
		})
	}
}
