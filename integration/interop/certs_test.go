package interop

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// serialHex is how acmed's log names a certificate: acme.SerialHex's
// even-length lower-case hex (this module does not import acme, whose
// dependencies it would have to list).
func serialHex(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// Who revoked, as acmed's audit record says (requester=...): the
// ordering account, the certificate's key, or another account holding
// valid authorizations for every name in it.
const (
	byAccount        = "requester=account"
	byCertKey        = "requester=key"
	byAuthorizations = "requester=authorizations"
)

// waitRevoked asserts that acmed logged the revocation of leaf, with that
// reason code, by the account key or the certificate key.
func (e *env) waitRevoked(t testing.TB, leaf *x509.Certificate, reason int, by string) {
	t.Helper()
	line := e.waitLog(t, "msg=audit", "event=certificate.revoke", "serial="+serialHex(leaf)+" ")
	if want := fmt.Sprintf("reason=%d ", reason); !strings.Contains(line, want) || !strings.Contains(line, by) {
		t.Errorf("revocation of %s: want %q and %q in %q", serialHex(leaf), want, by, line)
	}
	e.waitOnCRL(t, leaf, reason)
}

// readChain parses every certificate of PEM files, in order.
func readChain(t testing.TB, files ...string) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			var block *pem.Block
			block, b = pem.Decode(b)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		t.Fatalf("%v hold no certificate", files)
	}
	return certs
}

// checkChain asserts that chain[0] is a certificate for exactly names that
// chains to acmed's root through the rest of chain, and that acmed logged
// its issuance. It returns the leaf.
func (e *env) checkChain(t testing.TB, chain []*x509.Certificate, names ...string) *x509.Certificate {
	t.Helper()
	leaf := chain[0]
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         e.acmed.roots,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		t.Fatalf("certificate %s (%v) does not chain to acmed's root: %v", serialHex(leaf), leaf.DNSNames, err)
	}
	got := slices.Sorted(slices.Values(leaf.DNSNames))
	want := slices.Sorted(slices.Values(names))
	if !slices.Equal(got, want) || len(leaf.IPAddresses) != 0 || len(leaf.EmailAddresses) != 0 || len(leaf.URIs) != 0 {
		t.Fatalf("certificate %s covers DNS %v, IP %v, email %v, URI %v; want exactly DNS %v",
			serialHex(leaf), got, leaf.IPAddresses, leaf.EmailAddresses, leaf.URIs, want)
	}
	e.waitLog(t, "msg=audit", "event=certificate.issue", "serial="+serialHex(leaf)+" ")
	return leaf
}

// checkCertFile is checkChain on the certificates of PEM files.
func (e *env) checkCertFile(t testing.TB, names []string, files ...string) *x509.Certificate {
	t.Helper()
	return e.checkChain(t, readChain(t, files...), names...)
}

// validatedEvent starts the audit record of a validation's outcome.
const validatedEvent = "msg=audit event=authorization.validate"

// validated asserts that acmed validated name with challenge type typ, and
// never with another type.
func (e *env) validated(t testing.TB, name, typ string) {
	t.Helper()
	e.waitLog(t, validatedEvent, "identifier="+name+" ", "type="+typ, "outcome=valid")
	for _, line := range e.logLines(validatedEvent, "identifier="+name+" ", "outcome=valid") {
		if !strings.Contains(line, "type="+typ) {
			t.Errorf("%s validated with another type than %s: %s", name, typ, line)
		}
	}
}

// eventually calls f every interval until it returns nil, or until timeout
// has passed and returns f's last error.
func eventually(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still failing after %v: %w", timeout, err)
		}
		time.Sleep(every)
	}
}
