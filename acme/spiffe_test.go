package acme_test

import (
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
)

// longID is a SPIFFE ID of exactly n bytes in trust domain example.org.
func longID(n int) string {
	const prefix = "spiffe://example.org/"
	return prefix + strings.Repeat("a", n-len(prefix))
}

func TestParseSPIFFEID(t *testing.T) {
	good := []string{
		"spiffe://example.org/ns/payments/sa/api",
		"spiffe://example.org/a",
		"spiffe://k8s-west.example.com/ns/staging/sa/default",
		"spiffe://td_1-x.example/Path.With-Upper_9/x..y",
		"spiffe://example.org/9eebccd2-12bf-40a6-b262-65fe0487d453",
		"spiffe://localdomain/api",
		longID(2048),
		"spiffe://" + strings.Repeat("a", 255) + "/api",
	}
	for _, s := range good {
		t.Run("good "+s[:min(len(s), 60)], func(t *testing.T) {
			id, err := acme.ParseSPIFFEID(s)
			if err != nil {
				t.Fatalf("ParseSPIFFEID: %v", err)
			}
			if id.String() != s || id.URL().String() != s {
				t.Errorf("ID %q, URL %q; want both %q", id, id.URL(), s)
			}
		})
	}

	bad := []struct {
		id, want string // want: in the reason
	}{
		{"", "cannot be empty"},
		{"https://example.org/api", "scheme is missing or invalid"},
		{"SPIFFE://example.org/api", "scheme is missing or invalid"},
		{" spiffe://example.org/api", "scheme is missing or invalid"},
		{"spiffe:example.org/api", "scheme is missing or invalid"},
		{"spiffe:///api", "trust domain is missing"},
		{"spiffe://Example.org/api", "trust domain characters are limited"},
		{"spiffe://example.org:8443/api", "trust domain characters are limited"},
		{"spiffe://user@example.org/api", "trust domain characters are limited"},
		{"spiffe://[::1]/api", "trust domain characters are limited"},
		{"spiffe://example.org/api/", "trailing slash"},
		{"spiffe://example.org/", "trailing slash"},
		{"spiffe://example.org/a//b", "empty segments"},
		{"spiffe://example.org/a/../b", "dot segments"},
		{"spiffe://example.org/./b", "dot segments"},
		{"spiffe://example.org/a/..", "dot segments"},
		{"spiffe://example.org/api?x=1", "path segment characters are limited"},
		{"spiffe://example.org/api#frag", "path segment characters are limited"},
		{"spiffe://example.org/a%20b", "path segment characters are limited"},
		{"spiffe://example.org/caf\u00e9", "path segment characters are limited"},
		{"spiffe://example.org", "names only the trust domain"},
		{longID(2049), "over the 2048"},
		{"spiffe://" + strings.Repeat("a", 256) + "/api", "over the 255"},
		{"spiffe://example..org/api", "empty label"},
		{"spiffe://.example.org/api", "empty label"},
		{"spiffe://example.org./api", "empty label"},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.id[:min(len(tt.id), 60)], func(t *testing.T) {
			id, err := acme.ParseSPIFFEID(tt.id)
			if err == nil {
				t.Fatalf("ParseSPIFFEID accepted it as %q", id)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseSPIFFEID: %v; want it to say %q", err, tt.want)
			}
			if !id.IsZero() {
				t.Errorf("ID %q returned with the error", id)
			}
		})
	}
}
