package authority_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// issuersDouble is an authority.Issuers standing for cmd/acmed's (which
// the integration tests drive): it knows one more key identifier and
// answers rotations with info, or err.
type issuersDouble struct {
	known []byte
	info  authority.IssuerInfo
	err   error
	specs []authority.RotateSpec
}

func (d *issuersDouble) KnowsIssuerKeyID(aki []byte) bool { return bytes.Equal(aki, d.known) }
func (d *issuersDouble) ListIssuers(context.Context) ([]authority.IssuerInfo, error) {
	return []authority.IssuerInfo{d.info}, nil
}
func (d *issuersDouble) RotateIssuer(_ context.Context, spec authority.RotateSpec, _ authority.Operator) (*authority.IssuerInfo, error) {
	d.specs = append(d.specs, spec)
	if d.err != nil {
		return nil, d.err
	}
	return &d.info, nil
}

// TestAdminRotateCA: a rotation is an audit event naming the caller and
// the new issuer; a refused one too, with the error; without Issuers
// rotation is not available.
func TestAdminRotateCA(t *testing.T) {
	d := &issuersDouble{info: authority.IssuerInfo{Name: "7d41c09e5a2b3f60", State: "active", Subject: "CN=int 2",
		Fingerprint: "ab", NotAfter: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), Key: "store (wrapped)"}}
	e := newEnv(t, func(cfg *authority.Config) { cfg.Issuers = d })
	info, err := e.a.AdminRotateCA(t.Context(), "token", authority.RotateSpec{})
	if err != nil || info.Name != d.info.Name {
		t.Fatalf("AdminRotateCA: %+v, %v", info, err)
	}
	events := e.logs.events(t, "ca.rotate")
	if len(events) != 1 || events[0]["issuer"] != "7d41c09e5a2b3f60" || events[0]["caller"] != "token" || events[0]["how"] != "generated" {
		t.Fatalf("ca.rotate audit events: %v", events)
	}
	d.err = errors.New("bad request: --cert: the key does not match")
	if _, err := e.a.AdminRotateCA(t.Context(), "token", authority.RotateSpec{CertPEM: []byte("x")}); !errors.Is(err, d.err) {
		t.Fatalf("refused rotation: %v", err)
	}
	events = e.logs.events(t, "ca.rotate")
	if len(events) != 2 || events[1]["how"] != "installed" || events[1]["err"] != d.err.Error() {
		t.Fatalf("ca.rotate audit events after a refusal: %v", events)
	}
	list, err := e.a.AdminIssuers(t.Context(), "token")
	if err != nil || len(list) != 1 {
		t.Fatalf("AdminIssuers: %v %v", list, err)
	}

	bare := newEnv(t, nil)
	if _, err := bare.a.AdminRotateCA(t.Context(), "token", authority.RotateSpec{}); !errors.Is(err, authority.ErrNoRotation) {
		t.Fatalf("AdminRotateCA without Issuers: %v, want ErrNoRotation", err)
	}
}

// TestRenewalInfoRetiredIssuer: a certID naming a key identifier the
// Issuers know (a retired intermediate's) is looked up; another stays an
// unknown issuer.
func TestRenewalInfoRetiredIssuer(t *testing.T) {
	d := &issuersDouble{known: otherAKI}
	e := newEnv(t, func(cfg *authority.Config) { cfg.Issuers = d })
	acct := e.account(t)
	der, _ := e.issued(t, acct, "a.example")
	_, leaf := certIDOf(t, der)
	serial := acme.SerialHex(leaf.SerialNumber)
	if _, err := e.a.RenewalInfo(t.Context(), acme.CertID(otherAKI, serial)); err != nil {
		t.Fatalf("certID naming a retired issuer: %v", err)
	}
	_, err := e.a.RenewalInfo(t.Context(), acme.CertID(bytes.Repeat([]byte{9}, 20), serial))
	wantStatus(t, "certID naming no issuer of this CA", err, acme.NotFound(""), 404)
}
