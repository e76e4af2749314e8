package main

import (
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/admin"
)

// `acmed admin eab create --spiffe-id` refuses an ID outside the SPIFFE
// grammar itself, in one line naming the flag, the value and the reason,
// without calling the server; a good one is sent as given.
func TestEABCreateSPIFFEIDFlag(t *testing.T) {
	var mu sync.Mutex
	var got []string // spiffe_id of each request the server saw
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query().Get("spiffe_id"))
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(admin.EABKey{KID: "k1", Name: "x", SPIFFEID: r.URL.Query().Get("spiffe_id"), CreatedAt: time.Now()})
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	caFile, tokenFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("s3cret-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }

	tests := []struct {
		id   string
		want string // in the error; "" if the key is asked for
	}{
		{"spiffe://example.org/ns/payments/sa/api", ""},
		{"spiffe://prod.example.org/Billing-API_v2", ""},
		{"https://example.org/api", "scheme is missing or invalid"},
		{"spiffe://EXAMPLE.org/api", "trust domain characters are limited"},
		{"spiffe://example.org:8443/api", "trust domain characters are limited"},
		{"spiffe://example.org/api/", "trailing slash"},
		{"spiffe://example.org/a/./b", "dot segments"},
		{"spiffe://example.org/a b", "path segment characters are limited"},
		{"spiffe://example.org/api?x=1", "path segment characters are limited"},
		{"spiffe://example.org", "names only the trust domain"},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			mu.Lock()
			before := len(got)
			mu.Unlock()
			err := runAdmin(t.Context(), []string{"eab", "create", "--name", "x", "--spiffe-id", tt.id,
				"--admin-url", srv.URL, "--admin-ca", caFile, "--admin-token-file", tokenFile, "--json"}, io.Discard, noEnv)
			mu.Lock()
			sent := got[before:]
			mu.Unlock()
			if tt.want == "" {
				if err != nil || len(sent) != 1 || sent[0] != tt.id {
					t.Fatalf("error %v, server saw %q; want %q sent", err, sent, tt.id)
				}
				return
			}
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v; want one line", err)
			}
			for _, w := range []string{"--spiffe-id", tt.id, tt.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if len(sent) != 0 {
				t.Errorf("the server was asked for %q", sent)
			}
		})
	}
}

// TestParseInterleavedDashedID: an ID that starts with '-' (one base64url
// ID in 64 does) is the positional argument, not an unknown flag; a
// misspelt flag after it is still an error.
func TestParseInterleavedDashedID(t *testing.T) {
	tests := []struct {
		args    []string
		want    string
		wantErr bool
	}{
		{[]string{"-hvlmz29UEVOBNOG"}, "-hvlmz29UEVOBNOG", false},
		{[]string{"--json", "-hvlmz29UEVOBNOG"}, "-hvlmz29UEVOBNOG", false},
		{[]string{"-hvlmz29UEVOBNOG", "--json"}, "-hvlmz29UEVOBNOG", false},
		{[]string{"abc", "--jsn"}, "", true},
		{[]string{"--name", "-x", "-hvlmz29UEVOBNOG"}, "-hvlmz29UEVOBNOG", false},
	}
	for _, tt := range tests {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		name := fs.String("name", "", "")
		got, err := parseInterleaved(fs, tt.args, 1)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%q: no error", tt.args)
			}
			continue
		}
		if err != nil || len(got) != 1 || got[0] != tt.want || (len(tt.args) == 2 && !*asJSON) || (len(tt.args) == 3 && *name != "-x") {
			t.Errorf("%q: %q, json=%v, %v", tt.args, got, *asJSON, err)
		}
	}
}
