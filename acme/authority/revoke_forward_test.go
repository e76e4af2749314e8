package authority_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// recordingRevoker is the CA of record's side of a revocation (Vault, in
// production): it answers err, and records the serials it took.
type recordingRevoker struct {
	mu      sync.Mutex
	err     error
	serials []string
}

func (r *recordingRevoker) Revoke(_ context.Context, serial string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.serials = append(r.serials, serial)
	return nil
}

func (r *recordingRevoker) set(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

// TestRevokeForwarded: with a CA of record, a revocation reaches it
// before acmed records it; when it fails, nothing is recorded and the
// client is told to retry (transient) or gets serverInternal (refused);
// a certificate acmed has revoked is not forwarded again.
func TestRevokeForwarded(t *testing.T) {
	rev := &recordingRevoker{}
	e := newEnv(t, func(c *authority.Config) { c.Revoker = rev })
	owner := e.account(t)
	leaf := e.issueWith(t, owner, ecKey(t), "fwd.example")
	serial := acme.SerialHex(leaf.SerialNumber)
	req := authority.RevokeRequest{CertDER: leaf.Raw, Reason: 4, Account: owner}

	rev.set(fmt.Errorf("%w: Vault answered 503: Vault is sealed", ca.ErrUnavailable))
	err := e.a.Revoke(t.Context(), req)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Revoke with the CA of record unavailable: %v; want storage.ErrUnavailable (503)", err)
	}
	if e.revoked(t, leaf).Revoked {
		t.Fatal("recorded as revoked though the CA of record did not take it")
	}

	rev.set(errors.New("Vault answered 403: permission denied"))
	err = e.a.Revoke(t.Context(), req)
	var p *acme.Problem
	if !errors.As(err, &p) || p.Type != acme.ServerInternal("").Type || p.Detail != "revocation failed" {
		t.Fatalf("Revoke refused by the CA of record: %v; want serverInternal without the cause", err)
	}
	if e.revoked(t, leaf).Revoked {
		t.Fatal("recorded as revoked though the CA of record refused it")
	}

	rev.set(nil)
	if err := e.a.Revoke(t.Context(), req); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !e.revoked(t, leaf).Revoked {
		t.Fatal("not recorded")
	}
	if err := e.a.Revoke(t.Context(), req); !errors.As(err, &p) || p.Type != acme.AlreadyRevoked("").Type {
		t.Fatalf("second Revoke: %v; want alreadyRevoked", err)
	}
	if len(rev.serials) != 1 || rev.serials[0] != serial {
		t.Fatalf("forwarded %v; want %s once", rev.serials, serial)
	}
}
