package acme

import (
	"crypto/x509"
	"net"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// CheckCSR applies the finalize rules of RFC 8555 §7.4 that hold under
// every profile: the CSR is signed by its key, asks for exactly the order's
// identifiers (a CN, if any, among them) and no email address, and its key
// is not the account's. Key types and URI SANs are the profile's to judge.
func CheckCSR(csr *x509.CertificateRequest, idents []Identifier, accountThumbprint string) *Problem {
	if err := csr.CheckSignature(); err != nil {
		return BadCSR("CSR signature is invalid: %v", err)
	}
	if tp, err := Thumbprint(&jose.JSONWebKey{Key: csr.PublicKey}); err == nil && tp == accountThumbprint {
		return BadCSR("CSR uses the account key; use a separate key for the certificate")
	}
	if len(csr.EmailAddresses) > 0 {
		return BadCSR("CSR names email addresses; acmed certifies DNS names and IP addresses")
	}
	want := map[string]bool{}
	for _, id := range idents {
		want[string(id.Type)+":"+id.Value] = true
	}
	got := map[string]bool{}
	for _, n := range csr.DNSNames {
		got["dns:"+strings.ToLower(n)] = true
	}
	for _, ip := range csr.IPAddresses {
		got["ip:"+ip.String()] = true
	}
	if cn := csr.Subject.CommonName; cn != "" {
		key := "dns:" + strings.ToLower(cn)
		if ip := net.ParseIP(cn); ip != nil {
			key = "ip:" + ip.String()
		}
		if !want[key] {
			return BadCSR("CSR common name %q is not among the order's identifiers", cn)
		}
		got[key] = true
	}
	var missing, extra []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	for k := range got {
		if !want[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	switch {
	case len(extra) > 0:
		return BadCSR("CSR names identifiers not in the order: %s", strings.Join(extra, ", "))
	case len(missing) > 0:
		return BadCSR("CSR does not name the order's identifiers: %s", strings.Join(missing, ", "))
	}
	return nil
}
