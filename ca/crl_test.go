package ca_test

import (
	"context"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

const testCRLURL = "https://acme.example.internal/crl/0011223344556677.crl"

func TestCRLName(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	name := l.CRLName()
	if want := hex.EncodeToString(l.Intermediate().SubjectKeyId[:8]); name != want {
		t.Fatalf("CRLName = %q, want %q (the first 8 bytes of the subject key ID)", name, want)
	}
	noSKID := *l.Intermediate()
	noSKID.SubjectKeyId = nil
	if got := ca.CRLName(&noSKID); len(got) != 16 || got != name {
		// Our CAs' key IDs are RFC 7093 method 1, which CRLName
		// falls back to: the same name either way.
		t.Fatalf("CRLName without a subject key ID = %q, want %q", got, name)
	}
}

// TestSignCRL: what Go's parser sees of a CRL: the signature of the
// intermediate, the number, the times, the authority key identifier, the
// issuing distribution point (critical, the URL, user certificates only)
// and each entry's serial, time and reason.
func TestSignCRL(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	revokedAt := epoch.Add(-time.Hour)
	entries := []ca.CRLEntry{
		{Serial: big.NewInt(0x1001), RevokedAt: revokedAt, Reason: 0},
		{Serial: big.NewInt(0x1002), RevokedAt: revokedAt.Add(time.Minute), Reason: 1},
		{Serial: new(big.Int).Lsh(big.NewInt(1), 126), RevokedAt: revokedAt, Reason: 4},
	}
	der, err := l.SignCRL(t.Context(), ca.CRLRequest{
		Number: big.NewInt(42), ThisUpdate: epoch, NextUpdate: epoch.Add(24 * time.Hour),
		Entries: entries, DistributionPoint: testCRLURL,
	})
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := crl.CheckSignatureFrom(l.Intermediate()); err != nil {
		t.Fatalf("CheckSignatureFrom(intermediate): %v", err)
	}
	if err := crl.CheckSignatureFrom(l.Root()); err == nil {
		t.Fatal("CheckSignatureFrom(root) accepted a CRL the intermediate signed")
	}
	switch {
	case crl.Number.Cmp(big.NewInt(42)) != 0:
		t.Errorf("Number = %v, want 42", crl.Number)
	case !crl.ThisUpdate.Equal(epoch) || !crl.NextUpdate.Equal(epoch.Add(24*time.Hour)):
		t.Errorf("ThisUpdate, NextUpdate = %v, %v", crl.ThisUpdate, crl.NextUpdate)
	case string(crl.AuthorityKeyId) != string(l.Intermediate().SubjectKeyId):
		t.Errorf("AuthorityKeyId = %x, want the intermediate's %x", crl.AuthorityKeyId, l.Intermediate().SubjectKeyId)
	case crl.Issuer.String() != l.Intermediate().Subject.String():
		t.Errorf("Issuer = %s, want %s", crl.Issuer, l.Intermediate().Subject)
	}
	idp := 0
	for _, ext := range crl.Extensions {
		if !ext.Id.Equal([]int{2, 5, 29, 28}) {
			continue
		}
		idp++
		if !ext.Critical {
			t.Error("issuing distribution point is not critical")
		}
		uris, onlyUser, err := ca.ParseIssuingDistributionPoint(ext.Value)
		if err != nil {
			t.Fatal(err)
		}
		if len(uris) != 1 || uris[0] != testCRLURL || !onlyUser {
			t.Errorf("issuing distribution point = %q, onlyContainsUserCerts %v; want [%s], true", uris, onlyUser, testCRLURL)
		}
	}
	if idp != 1 {
		t.Fatalf("%d issuing distribution point extensions, want 1", idp)
	}
	if len(crl.RevokedCertificateEntries) != len(entries) {
		t.Fatalf("%d entries, want %d", len(crl.RevokedCertificateEntries), len(entries))
	}
	for i, got := range crl.RevokedCertificateEntries {
		want := entries[i]
		if got.SerialNumber.Cmp(want.Serial) != 0 || !got.RevocationTime.Equal(want.RevokedAt) || got.ReasonCode != want.Reason {
			t.Errorf("entry %d = %x %v reason %d, want %x %v reason %d", i,
				got.SerialNumber, got.RevocationTime, got.ReasonCode, want.Serial, want.RevokedAt, want.Reason)
		}
		// RFC 5280 §5.3.1: unspecified (0) SHOULD be absent.
		hasReason := false
		for _, ext := range got.Extensions {
			hasReason = hasReason || ext.Id.Equal([]int{2, 5, 29, 21})
		}
		if hasReason != (want.Reason != 0) {
			t.Errorf("entry %d (reason %d): reason code extension present = %v", i, want.Reason, hasReason)
		}
	}
}

func TestSignCRLRefuses(t *testing.T) {
	l, _ := newCA(t, ca.Config{Now: fixedNow(epoch)})
	good := func() ca.CRLRequest {
		return ca.CRLRequest{Number: big.NewInt(1), ThisUpdate: epoch, NextUpdate: epoch.Add(time.Hour)}
	}
	for _, tc := range []struct {
		name   string
		change func(*ca.CRLRequest)
		want   string
	}{
		{"no number", func(r *ca.CRLRequest) { r.Number = nil }, "number"},
		{"zero number", func(r *ca.CRLRequest) { r.Number = big.NewInt(0) }, "number"},
		{"next before this", func(r *ca.CRLRequest) { r.NextUpdate = epoch.Add(-time.Second) }, "nextUpdate"},
		{"reason 7", func(r *ca.CRLRequest) {
			r.Entries = []ca.CRLEntry{{Serial: big.NewInt(5), RevokedAt: epoch, Reason: 7}}
		}, "reason 7"},
		{"reason 11", func(r *ca.CRLRequest) {
			r.Entries = []ca.CRLEntry{{Serial: big.NewInt(5), RevokedAt: epoch, Reason: 11}}
		}, "reason 11"},
		{"no serial", func(r *ca.CRLRequest) { r.Entries = []ca.CRLEntry{{RevokedAt: epoch}} }, "serial"},
		{"non-ASCII URL", func(r *ca.CRLRequest) { r.DistributionPoint = "https://ex\u00e4mple/crl" }, "ASCII"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := good()
			tc.change(&req)
			_, err := l.SignCRL(t.Context(), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SignCRL: %v, want an error about %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := l.SignCRL(ctx, good()); err == nil {
		t.Fatal("SignCRL with a canceled context succeeded")
	}
}

// TestCRLOpenSSL: openssl, a relying party, accepts the CRL's signature
// against the chain, rejects a revoked certificate and accepts a good
// one with -crl_check, and does not use a CRL whose issuing distribution
// point names another URL than the certificate's (so the IDP is checked).
func TestCRLOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	l, dir := newCA(t, ca.Config{})
	now := time.Now().Truncate(time.Second)
	leaf := func(name string) (string, *big.Int) {
		req := validRequest(ecKey(t, elliptic.P256()))
		req.DNSNames, req.CommonName = []string{name}, name
		req.NotBefore, req.NotAfter = now.Add(-time.Minute), now.Add(time.Hour)
		req.CRLDistributionPoints = []string{testCRLURL}
		issued, err := l.Sign(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got := issued.Leaf.CRLDistributionPoints; len(got) != 1 || got[0] != testCRLURL {
			t.Fatalf("leaf CRL distribution points = %q", got)
		}
		path := filepath.Join(t.TempDir(), name+".pem")
		writePEM(t, path, "CERTIFICATE", issued.Leaf.Raw)
		return path, issued.Leaf.SerialNumber
	}
	good, _ := leaf("good.example")
	bad, badSerial := leaf("revoked.example")
	crlFile := func(dp string) string {
		der, err := l.SignCRL(t.Context(), ca.CRLRequest{
			Number: big.NewInt(time.Now().Unix()), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(time.Hour),
			Entries:           []ca.CRLEntry{{Serial: badSerial, RevokedAt: now.Add(-time.Minute), Reason: 1}},
			DistributionPoint: dp,
		})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "crl.pem")
		writePEM(t, path, "X509 CRL", der)
		return path
	}
	root := filepath.Join(dir, ca.RootCertFile)
	inter := filepath.Join(dir, ca.IntermediateCertFile)
	chain := filepath.Join(t.TempDir(), "chain.pem")
	chainPEM := append(must(os.ReadFile(inter)), must(os.ReadFile(root))...)
	if err := os.WriteFile(chain, chainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	crl := crlFile(testCRLURL)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("crl", "-in", crl, "-CAfile", chain, "-verify", "-noout"); err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	if out, err := run("crl", "-in", crl, "-CAfile", root, "-verify", "-noout"); err == nil && strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify accepted the CRL against the root alone (the intermediate signs it):\n%s", out)
	}
	text, err := run("crl", "-in", crl, "-noout", "-text")
	if err != nil {
		t.Fatalf("openssl crl -text: %v\n%s", err, text)
	}
	for _, want := range []string{"Issuing Distribution Point: critical", "URI:" + testCRLURL, "Only User Certificates", "Key Compromise", "X509v3 CRL Number"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	verify := func(crl, cert string) (string, error) {
		return run("verify", "-crl_check", "-CRLfile", crl, "-CAfile", root, "-untrusted", inter, cert)
	}
	for _, tc := range []struct {
		name, crl, cert, want string
		ok                    bool
	}{
		{"good certificate", crl, good, "OK", true},
		{"revoked certificate", crl, bad, "certificate revoked", false},
		{"CRL for another URL", crlFile("https://elsewhere.example/crl/x.crl"), good, "different CRL scope", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := verify(tc.crl, tc.cert)
			if (err == nil) != tc.ok || !strings.Contains(out, tc.want) {
				t.Fatalf("openssl verify -crl_check: %v, want success %v and %q:\n%s", err, tc.ok, tc.want, out)
			}
		})
	}
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
