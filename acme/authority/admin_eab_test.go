package authority_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/authority"
)

// An EAB key's SPIFFE ID is held to the SPIFFE grammar (go-spiffe's), and a
// refused one says why, names the field and the value, and stores nothing.
func TestAdminCreateEABKeySPIFFEID(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		id   string
		want string // in the error; "" if the key is created
	}{
		{"spiffe://example.org/ns/payments/sa/api", ""},
		{"spiffe://k8s-west.example.com/ns/staging/sa/Default_1", ""},
		{"https://example.org/api", "scheme is missing or invalid"},
		{"spiffe://Example.org/api", "trust domain characters are limited"},
		{"spiffe://example.org:443/api", "trust domain characters are limited"},
		{"spiffe://user@example.org/api", "trust domain characters are limited"},
		{"spiffe:///api", "trust domain is missing"},
		{"spiffe://example.org/api/", "trailing slash"},
		{"spiffe://example.org/a/../b", "dot segments"},
		{"spiffe://example.org/api?x=1", "path segment characters are limited"},
		{"spiffe://example.org/api#x", "path segment characters are limited"},
		{"spiffe://example.org", "names only the trust domain"},
		{"spiffe://example..org/api", "empty label"},
	}
	created := 0
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			k, err := e.a.AdminCreateEABKey(t.Context(), authority.Operator("test"), authority.EABKeySpec{Name: "team", SPIFFEID: tt.id})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("AdminCreateEABKey: %v", err)
				}
				created++
				if k.SPIFFEID != tt.id {
					t.Errorf("SPIFFEID %q, want %q", k.SPIFFEID, tt.id)
				}
				return
			}
			if !errors.Is(err, authority.ErrBadRequest) {
				t.Fatalf("AdminCreateEABKey: %v; want ErrBadRequest", err)
			}
			for _, w := range []string{"spiffe_id", tt.id, tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	keys, err := e.a.AdminEABKeys(t.Context(), authority.Operator("test"))
	if err != nil || len(keys) != created {
		t.Fatalf("%d keys stored (%v); want the %d good ones only", len(keys), err, created)
	}
}
