package main

import (
	"encoding/json"
	"encoding/pem"
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

func TestParseSpan(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: "36h", want: 36 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "0d", bad: true},
		{in: "-1h", bad: true},
		{in: "d", bad: true},
		{in: "soon", bad: true},
		{in: "", bad: true},
	} {
		got, err := parseSpan(tt.in)
		if tt.bad != (err != nil) || (!tt.bad && got != tt.want) {
			t.Errorf("parseSpan(%q) = %v, %v; want %v (bad %t)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "2025-06-01", want: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2025-06-01T12:30:00Z", want: time.Date(2025, 6, 1, 12, 30, 0, 0, time.UTC)},
		{in: "2025-06-01T14:30:00+02:00", want: time.Date(2025, 6, 1, 12, 30, 0, 0, time.UTC)},
		{in: "yesterday", bad: true},
		{in: "2025-06-01 12:30", bad: true},
	} {
		got, err := parseTime(tt.in)
		if tt.bad != (err != nil) || (!tt.bad && !got.Equal(tt.want)) {
			t.Errorf("parseTime(%q) = %v, %v; want %v (bad %t)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

// renew-early checks what it can before asking the server: a request
// with no filter, a bad serial or time is refused in one line naming the
// flag, and the server never hears of it; a good one is sent in the
// canonical serial form and prints exactly {"id", "matched"}.
func TestRenewEarlyFlags(t *testing.T) {
	var mu sync.Mutex
	var got []string // the query of each request the server saw
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.RawQuery)
		mu.Unlock()
		_ = json.NewEncoder(w).Encode(admin.Campaign{ID: "camp-1", Matched: 2, Pending: 2, CreatedAt: time.Now()})
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
	conn := []string{"--admin-url", srv.URL, "--admin-ca", caFile, "--admin-token-file", tokenFile, "--json"}
	noEnv := func(string) string { return "" }

	for _, tt := range []struct {
		name string
		args []string
		want string // in the error; "" when sent
		sent string // the query sent
	}{
		{"no filter", nil, "no filter", ""},
		{"only an explanation", []string{"--explanation-url", "https://ops.example.com/why"}, "no filter", ""},
		{"bad serial", []string{"--serial", "0a01", "--serial", "xyz"}, `--serial "xyz"`, ""},
		{"bad time", []string{"--issued-before", "last week"}, `--issued-before "last week"`, ""},
		{"relative explanation", []string{"--profile", "mtls", "--explanation-url", "/why"}, `--explanation-url "/why"`, ""},
		{"serials as openssl prints them", []string{"--serial", "serial=0A01", "--serial", "B:02"}, "", "serial=0a01&serial=0b02"},
		{"a date", []string{"--issued-before", "2025-06-01", "--profile", "server"}, "", "issued_before=2025-06-01T00%3A00%3A00Z&profile=server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			before := len(got)
			mu.Unlock()
			var out strings.Builder
			err := runAdmin(t.Context(), append(append([]string{"certs", "renew-early"}, tt.args...), conn...), &out, noEnv)
			mu.Lock()
			sent := got[before:]
			mu.Unlock()
			if tt.want != "" {
				if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v; want one line with %q", err, tt.want)
				}
				if len(sent) != 0 {
					t.Fatalf("the server was asked: %q", sent)
				}
				return
			}
			if err != nil || len(sent) != 1 || sent[0] != tt.sent {
				t.Fatalf("error %v, sent %q; want %q", err, sent, tt.sent)
			}
			var printed map[string]any
			if err := json.Unmarshal([]byte(out.String()), &printed); err != nil || len(printed) != 2 || printed["id"] != "camp-1" || printed["matched"] != float64(2) {
				t.Fatalf("printed %q; want exactly {\"id\", \"matched\"}", out.String())
			}
		})
	}
}
