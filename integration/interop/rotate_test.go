package interop

import (
	"crypto/x509"
	"encoding/hex"
	"path/filepath"
	"testing"
)

// TestLegoRotation: lego issues before and after `acmed admin ca rotate`:
// the first certificate chains through the --data intermediate, the
// second through the new one; lego revokes the first, which reaches the
// retired intermediate's CRL, and renews it (its ARI certID and replaces
// name the retired intermediate).
func TestLegoRotation(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	e, adm := newAdminEnv(t)
	l := newLego(t, e)
	const before, after = "before.rotate.lego.example", "after.rotate.lego.example"

	l.run(t, append(append(l.http(), domains(before)...), "run")...)
	old := l.check(t, before)
	original := issuerOf(t, l, before)
	if want := readChain(t, filepath.Join(e.acmed.data, "intermediate.pem"))[0]; !original.Equal(want) {
		t.Fatalf("before the rotation: issued by %q, want --data's intermediate %q", original.Subject, want.Subject)
	}

	var rotated struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	adm.run(t, &rotated, "ca", "rotate")
	if rotated.State != "active" {
		t.Fatalf("ca rotate: %+v", rotated)
	}

	l.run(t, append(append(l.http(), domains(after)...), "run")...)
	l.check(t, after)
	if got := issuerOf(t, l, after); crlName(got) != rotated.Name || got.Equal(original) {
		t.Fatalf("after the rotation: issued by %q (%s), want the new intermediate %s", got.Subject, crlName(got), rotated.Name)
	}

	// Revoking a certificate of the retired intermediate: it lands on
	// that intermediate's CRL (waitOnCRL checks it against --data's).
	l.run(t, append(domains(before), "revoke", "--keep", "--reason", "4")...)
	e.waitRevoked(t, old, 4, byAccount)

	// Renewing it: lego asks ARI about it and orders with replaces, both
	// naming the retired intermediate; the new intermediate signs.
	l.run(t, append(append(l.http(), domains(before)...), "renew", "--days", "999", "--no-random-sleep")...)
	renewed := l.check(t, before)
	if renewed.SerialNumber.Cmp(old.SerialNumber) == 0 || crlName(issuerOf(t, l, before)) != rotated.Name {
		t.Fatalf("renewal after the rotation: serial %s issued by %s", serialHex(renewed), crlName(issuerOf(t, l, before)))
	}
}

// issuerOf is the intermediate in lego's bundle for name.
func issuerOf(t *testing.T, l *lego, name string) *x509.Certificate {
	t.Helper()
	chain := readChain(t, l.certFile(name))
	if len(chain) < 2 {
		t.Fatalf("%s: lego's bundle holds no issuer", name)
	}
	return chain[1]
}

// crlName is ca.CRLName: the first 8 bytes of the subject key identifier.
func crlName(c *x509.Certificate) string {
	return hex.EncodeToString(c.SubjectKeyId[:min(8, len(c.SubjectKeyId))])
}
