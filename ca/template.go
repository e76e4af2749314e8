package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

const (
	rootValidityYears         = 10
	intermediateValidityYears = 5
	// caBackdate lets clients whose clocks run a little behind the CA's
	// accept certificates issued right after Init.
	caBackdate = time.Hour
	// serialAttempts bounds the retries on an all-zero serial, which a
	// healthy source yields with probability 2^-127; more than one in a row
	// means the source is broken, and looping forever would hide that.
	serialAttempts = 3
	// maxCommonNameLen is ub-common-name from RFC 5280 Appendix A.
	maxCommonNameLen = 64
)

// randomSerial returns a positive 127-bit serial. Clearing the top bit keeps
// the DER INTEGER within 16 bytes (no leading 0x00 pad), and RFC 5280
// §4.1.2.2 forbids zero.
func randomSerial(r io.Reader) (*big.Int, error) {
	var b [16]byte
	for range serialAttempts {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("ca: read random serial: %w", err)
		}
		b[0] &= 0x7f
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, errors.New("ca: random source returned only zero serials")
}

// randomHex returns n random bytes in hex, used to tell apart CAs that
// would otherwise share a name (two acmed installs trusted side by side).
func randomHex(r io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("ca: read random name: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// subjectKeyID follows RFC 7093 §2 method 1 (SHA-256 of the
// subjectPublicKey bits, truncated to 160 bits). Go generates one only for
// CA templates; leaves need it set explicitly.
func subjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("ca: marshal public key: %w", err)
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, fmt.Errorf("ca: parse public key: %w", err)
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

const (
	// caOnlyUsages are for certificates that sign certificates or CRLs.
	caOnlyUsages = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	// leafUsages are the bits a profile may ask for; the others
	// (contentCommitment, dataEncipherment, encipherOnly, decipherOnly)
	// have no use in TLS or SPIFFE, so asking for one is a caller's bug.
	leafUsages = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement
)

// leafKeyUsage fits the asked-for key usages to the key. digitalSignature
// is always set: every TLS 1.3 handshake and every X509-SVID needs it.
// keyEncipherment is kept only for RSA, whose TLS 1.2 key exchange
// encrypts to the key (RFC 8813 forbids it for ECDSA keys), and
// keyAgreement only for ECDSA (static ECDH); Ed25519 keys only sign
// (RFC 8410 §5). With none asked for, RSA keys get keyEncipherment as
// before profiles. Filtering rather than refusing lets one profile serve
// every key type it allows.
func leafKeyUsage(pub crypto.PublicKey, want x509.KeyUsage) (x509.KeyUsage, error) {
	if want&caOnlyUsages != 0 {
		return 0, fmt.Errorf("ca: key usage %#x asks for keyCertSign or cRLSign, which a leaf never has", want)
	}
	if extra := want &^ leafUsages; extra != 0 {
		return 0, fmt.Errorf("ca: key usage %#x is not one acmed issues (want digitalSignature, keyEncipherment, keyAgreement)", extra)
	}
	switch pub.(type) {
	case *rsa.PublicKey:
		if want == 0 {
			want = x509.KeyUsageKeyEncipherment
		}
		return x509.KeyUsageDigitalSignature | want&x509.KeyUsageKeyEncipherment, nil
	case *ecdsa.PublicKey:
		return x509.KeyUsageDigitalSignature | want&x509.KeyUsageKeyAgreement, nil
	case ed25519.PublicKey:
		return x509.KeyUsageDigitalSignature, nil
	case nil:
		return 0, errors.New("ca: request has no public key")
	default:
		return 0, fmt.Errorf("ca: unsupported public key type %T", pub)
	}
}

func caTemplate(r io.Reader, pub crypto.PublicKey, cn string, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	serial, err := randomSerial(r)
	if err != nil {
		return nil, err
	}
	skid, err := subjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"acmed"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SubjectKeyId:          skid,
	}, nil
}

func rootTemplate(r io.Reader, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	id, err := randomHex(r, 4)
	if err != nil {
		return nil, err
	}
	return caTemplate(r, pub, "acmed root CA "+id,
		now.Add(-caBackdate), now.AddDate(rootValidityYears, 0, 0))
}

// intermediateTemplate has MaxPathLen 0 because it signs only leaves; a
// leaked intermediate key then cannot mint further CAs.
func intermediateTemplate(r io.Reader, pub crypto.PublicKey, now time.Time) (*x509.Certificate, error) {
	id, err := randomHex(r, 4)
	if err != nil {
		return nil, err
	}
	t, err := caTemplate(r, pub, "acmed intermediate CA "+id,
		now.Add(-caBackdate), now.AddDate(intermediateValidityYears, 0, 0))
	if err != nil {
		return nil, err
	}
	t.MaxPathLen = 0
	t.MaxPathLenZero = true
	return t, nil
}
