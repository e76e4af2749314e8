package challengetest

import (
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

func TestHTTP01(t *testing.T) {
	h := StartHTTP01(t)
	h.Set("tok", "tok.thumb")
	h.Set("gone", "gone.thumb")
	h.Delete("gone")
	client := &http.Client{Timeout: 5 * time.Second}
	base := "http://127.0.0.1:" + strconv.Itoa(h.Port)

	tests := []struct {
		name     string
		method   string
		path     string
		status   int
		body     string
		token    string // whose hits the request counts towards
		wantHits int
	}{
		{"set token", http.MethodGet, "/.well-known/acme-challenge/tok", http.StatusOK, "tok.thumb", "tok", 1},
		{"set token again", http.MethodGet, "/.well-known/acme-challenge/tok", http.StatusOK, "tok.thumb", "tok", 2},
		{"unknown token", http.MethodGet, "/.well-known/acme-challenge/nope", http.StatusNotFound, "", "nope", 1},
		{"deleted token", http.MethodGet, "/.well-known/acme-challenge/gone", http.StatusNotFound, "", "gone", 1},
		{"other path", http.MethodGet, "/tok", http.StatusNotFound, "", "tok", 2},
		{"prefix only", http.MethodGet, "/.well-known/acme-challenge/", http.StatusNotFound, "", "", 0},
		{"nested path", http.MethodGet, "/.well-known/acme-challenge/tok/x", http.StatusNotFound, "", "tok", 2},
		{"POST", http.MethodPost, "/.well-known/acme-challenge/tok", http.StatusMethodNotAllowed, "", "tok", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == http.StatusOK && string(body) != tt.body {
				t.Fatalf("body %q, want %q", body, tt.body)
			}
			if got := h.Hits(tt.token); got != tt.wantHits {
				t.Fatalf("Hits(%q) = %d, want %d", tt.token, got, tt.wantHits)
			}
		})
	}
}

func TestListenHTTP01Close(t *testing.T) {
	h, err := ListenHTTP01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if h.Addr != "127.0.0.1:"+strconv.Itoa(h.Port) {
		t.Errorf("Addr %q does not match Port %d", h.Addr, h.Port)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	if resp, err := client.Get("http://" + h.Addr + "/.well-known/acme-challenge/x"); err == nil {
		resp.Body.Close()
		t.Fatal("responder still answers after Close")
	}
	if _, err := ListenHTTP01("127.0.0.1"); err == nil {
		t.Fatal("ListenHTTP01 without a port succeeded")
	}
}
