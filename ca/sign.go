package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/acmed/acmed/acme"
)

const (
	serverCertValidity = 90 * 24 * time.Hour
	// serverCertBackdate absorbs small clock differences between acmed and
	// the clients that connect to it right after it starts.
	serverCertBackdate = time.Minute
)

// Request is what the ACME layer hands over after checking the CSR.
type Request struct {
	PublicKey   crypto.PublicKey // from the checked CSR
	DNSNames    []string
	IPAddresses []net.IP
	CommonName  string // may be empty; dropped unless it is one of the SANs
	// NotBefore and NotAfter are decided by the caller and used as given,
	// truncated to whole seconds by the X.509 encoding.
	NotBefore, NotAfter time.Time
	// ExtKeyUsage is the profile's extended key usages. Nil or empty means
	// serverAuth and clientAuth, what every leaf had before profiles: a
	// leaf with no EKU extension would be good for any purpose, which no
	// profile means to ask for.
	ExtKeyUsage []x509.ExtKeyUsage
	// KeyUsage is the profile's key usages; 0 means chosen by key type.
	// Either way the bits are fitted to the key (see leafKeyUsage), and
	// keyCertSign or cRLSign is an error: a leaf never signs.
	KeyUsage x509.KeyUsage
	// URIs are URI SANs (the SPIFFE ID of an X509-SVID); each must be
	// absolute (RFC 5280 §4.2.1.6).
	URIs []*url.URL
	// CRLDistributionPoints and OCSPServer are the URLs relying parties
	// check revocation at (RFC 5280 §4.2.1.13, §4.2.2.1); nil: none.
	CRLDistributionPoints []string
	OCSPServer            []string
	// CSR is the client's CSR (DER) the request was checked from. A
	// signer that must be shown one (Vault's sign-verbatim) sends it;
	// Local builds the certificate from the fields above.
	CSR []byte
}

// Issued is a signed certificate with its chain.
type Issued struct {
	Leaf     *x509.Certificate
	ChainPEM []byte // leaf PEM then intermediate PEM, not the root
	Serial   string // Leaf.SerialNumber in acme.SerialHex's canonical form
	// Issuer is the CRL name of the intermediate that signed it
	// (CRLName): a rotated CA has several.
	Issuer string
}

// Sign issues an end-entity certificate for TLS servers and clients.
//
// It refuses a NotAfter beyond the intermediate's: such a certificate would
// stop verifying when the intermediate expires, earlier than it claims.
func (l *Local) Sign(ctx context.Context, req Request) (*Issued, error) {
	tmpl, err := l.leafTemplate(req)
	if err != nil {
		return nil, err
	}
	// Checked last, just before the one step that cannot be taken back.
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	der, err := x509.CreateCertificate(l.cfg.rand(), tmpl, l.intermediate, req.PublicKey, l.key)
	if err != nil {
		return nil, fmt.Errorf("ca: sign: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: parse issued certificate: %w", err)
	}
	chain := append(encodeCert(der), l.intermediatePEM...)
	return &Issued{Leaf: leaf, ChainPEM: chain, Serial: acme.SerialHex(leaf.SerialNumber), Issuer: l.name}, nil
}

func (l *Local) leafTemplate(req Request) (*x509.Certificate, error) {
	usage, err := leafKeyUsage(req.PublicKey, req.KeyUsage)
	if err != nil {
		return nil, err
	}
	if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
		return nil, errors.New("ca: request names no DNS names or IP addresses")
	}
	for i, u := range req.URIs {
		if u == nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" && u.Path == "" {
			return nil, fmt.Errorf("ca: URI SAN %d (%v) lacks a scheme or what follows it", i, u)
		}
	}
	eku := req.ExtKeyUsage
	if len(eku) == 0 {
		eku = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	switch {
	case req.NotBefore.IsZero() || req.NotAfter.IsZero():
		return nil, errors.New("ca: request lacks NotBefore or NotAfter")
	case !req.NotAfter.After(req.NotBefore):
		return nil, fmt.Errorf("ca: NotAfter %s is not after NotBefore %s", req.NotAfter, req.NotBefore)
	case req.NotAfter.After(l.intermediate.NotAfter):
		return nil, fmt.Errorf("ca: NotAfter %s is beyond the intermediate's expiry %s", req.NotAfter, l.intermediate.NotAfter)
	}
	serial, err := randomSerial(l.cfg.rand())
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(req.PublicKey)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName(req)},
		NotBefore:             req.NotBefore,
		NotAfter:              req.NotAfter,
		KeyUsage:              usage,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  false,
		DNSNames:              req.DNSNames,
		IPAddresses:           req.IPAddresses,
		URIs:                  req.URIs,
		CRLDistributionPoints: req.CRLDistributionPoints,
		OCSPServer:            req.OCSPServer,
		SubjectKeyId:          skid,
		AuthorityKeyId:        l.intermediate.SubjectKeyId,
	}, nil
}

// commonName keeps the CN only if a SAN backs it: verifiers ignore the CN,
// so one that names something else would be an unvalidated claim. A CN
// longer than RFC 5280 allows is dropped rather than failing the issuance.
// With no CN, the Go encoder marks the SAN extension critical as RFC 5280
// §4.2.1.6 requires for an empty subject.
func commonName(req Request) string {
	cn := req.CommonName
	if cn == "" || len(cn) > maxCommonNameLen {
		return ""
	}
	if ip := net.ParseIP(cn); ip != nil {
		for _, san := range req.IPAddresses {
			if san.Equal(ip) {
				return cn
			}
		}
		return ""
	}
	for _, san := range req.DNSNames {
		if strings.EqualFold(san, cn) {
			return cn
		}
	}
	return ""
}

// ServerCertificate issues a TLS server certificate for acmed's own HTTPS
// listener, for hosts that are DNS names or IP literals, with a fresh P-256
// key, valid 90 days from one minute ago, and a chain that includes the
// intermediate.
func (l *Local) ServerCertificate(hosts []string) (tls.Certificate, error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, errors.New("ca: server certificate needs at least one host")
	}
	var req Request
	for _, h := range hosts {
		h = unbracket(h)
		if h == "" {
			return tls.Certificate{}, errors.New("ca: server certificate host is empty")
		}
		if ip := net.ParseIP(h); ip != nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else {
			req.DNSNames = append(req.DNSNames, h)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), l.cfg.rand())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ca: generate server key: %w", err)
	}
	now := l.cfg.now()
	req.PublicKey = key.Public()
	req.CommonName = unbracket(hosts[0])
	req.NotBefore = now.Add(-serverCertBackdate)
	req.NotAfter = now.Add(serverCertValidity)
	if req.NotAfter.After(l.intermediate.NotAfter) {
		// An imported intermediate may end sooner: acmed's own HTTPS
		// certificate ends with it (and a restart after its renewal
		// issues a new one).
		req.NotAfter = l.intermediate.NotAfter
	}

	// Nothing to cancel: this runs once at startup, before any request.
	issued, err := l.Sign(context.Background(), req)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{
		Certificate: [][]byte{issued.Leaf.Raw, l.intermediate.Raw},
		PrivateKey:  key,
		Leaf:        issued.Leaf,
	}, nil
}

// unbracket accepts "[::1]" as written in URLs and listen addresses.
func unbracket(host string) string {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		return host[1 : len(host)-1]
	}
	return host
}
