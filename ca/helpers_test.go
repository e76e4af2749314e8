package ca_test

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

// epoch is a fixed, second-aligned instant: X.509 times carry whole seconds,
// so certificates built from it compare exactly.
var epoch = time.Date(2031, time.March, 14, 15, 9, 26, 0, time.UTC)

func fixedNow(t time.Time) func() time.Time {
	return func() time.Time { return t }
}

// newCA initialises a CA in a fresh directory (one level below TempDir, so
// Init has to create it) and loads it.
func newCA(tb testing.TB, cfg ca.Config) (*ca.Local, string) {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "ca")
	if err := ca.Init(dir, cfg); err != nil {
		tb.Fatalf("Init: %v", err)
	}
	l, err := ca.Load(dir, cfg)
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return l, dir
}

func parsePEMCerts(tb testing.TB, b []byte) []*x509.Certificate {
	tb.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			tb.Fatalf("PEM block type %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			tb.Fatalf("parse certificate: %v", err)
		}
		certs = append(certs, c)
	}
	if len(b) != 0 {
		tb.Fatalf("trailing data after PEM blocks: %q", b)
	}
	return certs
}

func readCertFile(tb testing.TB, path string) *x509.Certificate {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	certs := parsePEMCerts(tb, b)
	if len(certs) != 1 {
		tb.Fatalf("%s holds %d certificates, want 1", path, len(certs))
	}
	return certs[0]
}

func rootPool(l *ca.Local) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(l.Root())
	return p
}
