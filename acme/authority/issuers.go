package authority

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// The CA's intermediates, for operators: list them, and rotate (issue 17
// item 4): a new intermediate signs from then on, on every replica; the
// old ones keep their CRLs and OCSP answers.

// Issuers is the CA side of rotation, which cmd/acmed wires over the
// signer and the store.
type Issuers interface {
	// KnowsIssuerKeyID reports whether aki is the subject key
	// identifier of one of the CA's issuers, active or retired: an ARI
	// certID names its certificate's issuer by it.
	KnowsIssuerKeyID(aki []byte) bool
	// ListIssuers lists every issuer, oldest first.
	ListIssuers(ctx context.Context) ([]IssuerInfo, error)
	// RotateIssuer makes a new intermediate (or installs spec's) the
	// active one. Bad input is an error wrapping ErrBadRequest.
	RotateIssuer(ctx context.Context, spec RotateSpec, by Operator) (*IssuerInfo, error)
}

// RotateSpec is what `acmed admin ca rotate` asks for. Empty: a new key
// and an intermediate signed with the root key in --data.
type RotateSpec struct {
	CertPEM []byte // an intermediate signed elsewhere (--cert)
	KeyPEM  []byte // its key (--key), for the file backend
	// KeyLabel names the new key in the PKCS#11 token: the key of
	// CertPEM, or else the label a new key is generated under.
	KeyLabel string
}

// IssuerInfo is one issuer as operators see it.
type IssuerInfo struct {
	Name        string // the CRL name (ca.CRLName)
	State       string // storage.IssuerActive or storage.IssuerRetired
	Subject     string
	NotBefore   time.Time
	NotAfter    time.Time
	Fingerprint string // SHA-256 of the certificate, lower-case hex
	CRL         string // the CRL's URL
	Key         string // where the key is: "--data", "store (wrapped)", "pkcs11 label L"
	Created     time.Time
	Activated   time.Time
	Retired     time.Time
	By          string
	// Loaded: this replica signs with it (a retired issuer past its
	// notAfter, or one whose key this replica cannot reach, is not).
	Loaded bool
}

// ErrNoRotation: the CA backend does not rotate through acmed.
var ErrNoRotation = errors.New("rotation is not available")

// AdminIssuers lists the CA's issuers.
func (a *Authority) AdminIssuers(ctx context.Context, by Operator) ([]IssuerInfo, error) {
	if a.cfg.Issuers == nil {
		return nil, fmt.Errorf("%w: this server keeps no issuer set", ErrNoRotation)
	}
	return a.cfg.Issuers.ListIssuers(ctx)
}

// AdminRotateCA rotates the CA's intermediate, and records who did.
func (a *Authority) AdminRotateCA(ctx context.Context, by Operator, spec RotateSpec) (*IssuerInfo, error) {
	how := "generated"
	if len(spec.CertPEM) > 0 {
		how = "installed"
	}
	if a.cfg.Issuers == nil {
		a.audit(ctx, "ca.rotate", "caller", string(by), "how", how, "err", ErrNoRotation)
		return nil, fmt.Errorf("%w: this server keeps no issuer set", ErrNoRotation)
	}
	info, err := a.cfg.Issuers.RotateIssuer(ctx, spec, by)
	if err != nil {
		a.audit(ctx, "ca.rotate", "caller", string(by), "how", how, "err", err.Error())
		return nil, err
	}
	a.audit(ctx, "ca.rotate", "caller", string(by), "issuer", info.Name, "how", how,
		"subject", info.Subject, "sha256", info.Fingerprint, "not_after", info.NotAfter.UTC().Format(time.RFC3339), "key", info.Key)
	return info, nil
}
