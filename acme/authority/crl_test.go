package authority_test

import (
	"crypto/x509"
	"slices"
	"testing"

	"github.com/acmed/acmed/acme/authority"
)

// TestCRLDistributionPoints: issued certificates name the configured CRL
// URL, and none without one.
func TestCRLDistributionPoints(t *testing.T) {
	const url = "http://crl.example.internal/crl/0011223344556677.crl"
	for _, tc := range []struct {
		name string
		dps  []string
	}{
		{"configured", []string{url}},
		{"none", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *authority.Config) { c.CRLDistributionPoints = tc.dps })
			der, _ := e.issued(t, e.account(t), "crl.example")
			leaf, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(leaf.CRLDistributionPoints, tc.dps) {
				t.Fatalf("CRL distribution points %q, want %q", leaf.CRLDistributionPoints, tc.dps)
			}
		})
	}
}
