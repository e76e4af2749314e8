package ca_test

import (
	"bytes"
	"crypto/x509"
	"encoding/asn1"
	"math/big"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/ca"
)

var oidOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// movingClock is a test clock that only moves when told.
type movingClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *movingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *movingClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func ocspTemplate(now time.Time) ocsp.Response {
	return ocsp.Response{Status: ocsp.Good, SerialNumber: big.NewInt(42), ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
}

// TestSignOCSP: the CA answers as its own responder, named by its subject,
// with no certificate of another signer in the answer.
func TestSignOCSP(t *testing.T) {
	l, _ := newCA(t, ca.Config{})
	der, err := l.SignOCSP(ocspTemplate(time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponse(der, l.Intermediate())
	if err != nil {
		t.Fatalf("answer does not verify against the intermediate: %v", err)
	}
	if resp.Certificate != nil || !bytes.Equal(resp.RawResponderName, l.Intermediate().RawSubject) || resp.Status != ocsp.Good {
		t.Fatalf("responder %x certificate %v status %d, want the intermediate itself, good", resp.RawResponderName, resp.Certificate, resp.Status)
	}
}

// TestDelegatedOCSP checks the responder certificate (RFC 6960 §4.2.2.2:
// issued by the CA, id-kp-OCSPSigning, and id-pkix-ocsp-nocheck) and when
// it is replaced.
func TestDelegatedOCSP(t *testing.T) {
	clk := &movingClock{now: epoch}
	l, _ := newCA(t, ca.Config{Now: clk.Now})
	const cover = 4 * time.Hour
	d, err := l.DelegatedOCSP(cover)
	if err != nil {
		t.Fatal(err)
	}
	first, err := d.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case first.CheckSignatureFrom(l.Intermediate()) != nil:
		t.Error("responder certificate not signed by the intermediate")
	case first.IsCA || first.KeyUsage != x509.KeyUsageDigitalSignature:
		t.Errorf("IsCA %v KeyUsage %v, want a leaf for digitalSignature", first.IsCA, first.KeyUsage)
	case len(first.ExtKeyUsage) != 1 || first.ExtKeyUsage[0] != x509.ExtKeyUsageOCSPSigning:
		t.Errorf("ExtKeyUsage %v, want OCSPSigning only", first.ExtKeyUsage)
	case !bytes.Equal(first.AuthorityKeyId, l.Intermediate().SubjectKeyId) || len(first.SubjectKeyId) == 0:
		t.Error("key identifiers missing")
	case !first.NotAfter.Equal(epoch.Add(2 * cover)):
		t.Errorf("NotAfter %s, want %s", first.NotAfter, epoch.Add(2*cover))
	}
	nocheck := false
	for _, ext := range first.Extensions {
		if ext.Id.Equal(oidOCSPNoCheck) {
			nocheck = !ext.Critical && bytes.Equal(ext.Value, []byte{0x05, 0x00})
		}
	}
	if !nocheck {
		t.Error("no non-critical id-pkix-ocsp-nocheck with a NULL value")
	}
	inter := x509.NewCertPool()
	inter.AddCert(l.Intermediate())
	if _, err := first.Verify(x509.VerifyOptions{Roots: rootPool(l), Intermediates: inter, CurrentTime: epoch,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}}); err != nil {
		t.Errorf("responder certificate does not chain to the root for OCSP signing: %v", err)
	}

	der, err := d.SignOCSP(ocspTemplate(epoch))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ocsp.ParseResponse(der, l.Intermediate())
	if err != nil {
		t.Fatalf("delegated answer does not verify: %v", err)
	}
	if resp.Certificate == nil || !resp.Certificate.Equal(first) || !bytes.Equal(resp.RawResponderName, first.RawSubject) {
		t.Fatal("delegated answer does not carry and name the responder certificate")
	}

	// Kept while an answer signed now expires before it does…
	clk.Set(epoch.Add(cover - time.Second))
	if c, _ := d.Certificate(); !c.Equal(first) {
		t.Fatal("responder certificate replaced early")
	}
	// …and replaced when one would not.
	clk.Set(epoch.Add(cover))
	second, err := d.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if second.Equal(first) || !second.NotAfter.Equal(epoch.Add(3*cover)) {
		t.Fatalf("responder certificate not replaced after %s (NotAfter %s)", cover, second.NotAfter)
	}
}

// TestDelegatedOCSPNearIntermediateExpiry: a responder certificate never
// outlives the intermediate, and is then replaced halfway through.
func TestDelegatedOCSPNearIntermediateExpiry(t *testing.T) {
	clk := &movingClock{now: epoch}
	l, _ := newCA(t, ca.Config{Now: clk.Now})
	end := l.Intermediate().NotAfter
	start := end.Add(-time.Hour)
	clk.Set(start)
	d, err := l.DelegatedOCSP(4 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := d.Certificate()
	if !first.NotAfter.Equal(end) {
		t.Fatalf("NotAfter %s, want the intermediate's %s", first.NotAfter, end)
	}
	clk.Set(start.Add(29 * time.Minute))
	if c, _ := d.Certificate(); !c.Equal(first) {
		t.Fatal("replaced before halfway")
	}
	clk.Set(start.Add(30 * time.Minute))
	if c, _ := d.Certificate(); c.Equal(first) {
		t.Fatal("not replaced halfway")
	}
}

func TestDelegatedOCSPShortCover(t *testing.T) {
	l, _ := newCA(t, ca.Config{})
	if _, err := l.DelegatedOCSP(time.Minute); err == nil {
		t.Fatal("a 1m response validity was accepted for a delegated responder")
	}
}
