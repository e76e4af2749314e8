package interop

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// waitOnCRL asserts that leaf, revoked with reason, is on the CRL at its
// CRL distribution point (acmed's ACME listener) within a deadline, and
// that the CRL is signed by leaf's issuer. acmed runs with
// --crl-refresh 2s here; the time it took is logged.
func (e *env) waitOnCRL(t testing.TB, leaf *x509.Certificate, reason int) {
	t.Helper()
	if len(leaf.CRLDistributionPoints) != 1 {
		t.Fatalf("certificate %s: CRL distribution points %q, want one", serialHex(leaf), leaf.CRLDistributionPoints)
	}
	url := leaf.CRLDistributionPoints[0]
	issuer := readChain(t, filepath.Join(e.acmed.data, "intermediate.pem"))[0]
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.acmed.roots}}}
	start := time.Now()
	err := eventually(30*time.Second, 200*time.Millisecond, func() error {
		resp, err := hc.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		der, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, der)
		}
		list, err := x509.ParseRevocationList(der)
		if err != nil {
			return err
		}
		if err := list.CheckSignatureFrom(issuer); err != nil {
			return fmt.Errorf("CRL %v: %w", list.Number, err)
		}
		for _, rc := range list.RevokedCertificateEntries {
			if rc.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				if rc.ReasonCode != reason {
					return fmt.Errorf("%s on the CRL with reason %d, want %d", serialHex(leaf), rc.ReasonCode, reason)
				}
				return nil
			}
		}
		return fmt.Errorf("%s not on CRL %v", serialHex(leaf), list.Number)
	})
	if err != nil {
		t.Fatalf("revoked certificate on the CRL: %v", err)
	}
	t.Logf("%s on the CRL at %s %v after the revocation was logged", serialHex(leaf), url, time.Since(start).Round(10*time.Millisecond))
}
