package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/authority"
)

// TestRotateRefusedBackends: a backend acmed does not rotate is refused
// in one line naming it, before anything is made: Vault is the CA of
// record and rotates in Vault.
func TestRotateRefusedBackends(t *testing.T) {
	for _, tc := range []struct{ backend, want string }{
		{"vault", "--ca-backend vault: Vault is the CA of record; rotate the intermediate in Vault"},
		{"other", "--ca-backend other: acmed does not rotate"},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			m := &issuers{c: config{backendFlags: backendFlags{CABackend: tc.backend}}}
			_, err := m.RotateIssuer(t.Context(), authority.RotateSpec{}, "token")
			if !errors.Is(err, authority.ErrBadRequest) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("RotateIssuer with --ca-backend %s: %v, want one line with %q", tc.backend, err, tc.want)
			}
		})
	}
}
