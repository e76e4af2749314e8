package api_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// get is an unauthenticated GET.
func (e *env) get(url string) *response {
	e.t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}
}

// renewalInfoURL is the directory's renewalInfo.
func (e *env) renewalInfoURL() string {
	e.t.Helper()
	var dir map[string]any
	if err := json.Unmarshal(e.get(e.url("/directory")).body, &dir); err != nil {
		e.t.Fatal(err)
	}
	u, _ := dir["renewalInfo"].(string)
	if u != e.url("/acme/renewal-info") {
		e.t.Fatalf("directory renewalInfo %q, want %q", u, e.url("/acme/renewal-info"))
	}
	return u
}

// issue has c order and get a certificate for names with more payload
// fields (replaces); it returns the order and the leaf.
func (c *client) issue(fields map[string]any, names ...string) (*order, *x509.Certificate) {
	c.e.t.Helper()
	o := c.readyOrder(fields, names...)
	got, chain := c.finalizeChain(o, csrDER(c.e.t, newKey(c.e.t), "", names...))
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		c.e.t.Fatal(err)
	}
	return got, leaf
}

func certIDOf(leaf *x509.Certificate) string {
	return acme.CertID(leaf.AuthorityKeyId, acme.SerialHex(leaf.SerialNumber))
}

type wireWindow struct {
	SuggestedWindow struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"suggestedWindow"`
	ExplanationURL string `json:"explanationURL"`
}

func TestRenewalInfoHTTP(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	_, leaf := c.issue(nil, "a.example")
	base := e.renewalInfoURL()
	serial := acme.SerialHex(leaf.SerialNumber)

	r := e.get(base + "/" + certIDOf(leaf))
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET renewalInfo: %d %s %s", r.status, r.header.Get("Content-Type"), r.body)
	}
	var w wireWindow
	if err := json.Unmarshal(r.body, &w); err != nil {
		t.Fatal(err)
	}
	cert := &acme.Certificate{NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter}
	start, end := cert.SuggestedWindow(e.clock.Now())
	if !w.SuggestedWindow.Start.Equal(start) || !w.SuggestedWindow.End.Equal(end) || w.ExplanationURL != "" {
		t.Fatalf("renewal info %s, want window %s .. %s", r.body, start, end)
	}
	// The window is within the last third of the lifetime.
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	if start.Before(leaf.NotAfter.Add(-life/3).Add(-time.Second)) || end.After(leaf.NotAfter) {
		t.Fatalf("window %s .. %s is not in the last third of %s .. %s", start, end, leaf.NotBefore, leaf.NotAfter)
	}
	want := strconv.Itoa(int(life / 50 / time.Second))
	if got := r.header.Get("Retry-After"); got != want {
		t.Fatalf("Retry-After %q, want %q (a fiftieth of %v)", got, want, life)
	}
	if got := r.header.Get("Cache-Control"); got != "public, max-age="+want {
		t.Fatalf("Cache-Control %q", got)
	}

	// Revoked, the window has passed: renew now, and ask again soon.
	c.must(http.StatusOK, e.url("/acme/revoke-cert"), map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(leaf.Raw)}, nil)
	r = e.get(base + "/" + certIDOf(leaf))
	if err := json.Unmarshal(r.body, &w); err != nil {
		t.Fatal(err)
	}
	if r.status != http.StatusOK || w.SuggestedWindow.End.After(e.clock.Now()) || r.header.Get("Retry-After") != "60" {
		t.Fatalf("revoked: %d %s, Retry-After %s; want a window already over", r.status, r.body, r.header.Get("Retry-After"))
	}

	otherIssuer := acme.CertID(bytes.Repeat([]byte{7}, 20), serial)
	tests := []struct {
		name   string
		method string
		path   string
		status int
	}{
		{"malformed certID", http.MethodGet, "/not-a-cert-id", http.StatusBadRequest},
		{"serial with padding", http.MethodGet, "/" + certIDOf(leaf) + "=", http.StatusBadRequest},
		{"unknown serial", http.MethodGet, "/" + acme.CertID(leaf.AuthorityKeyId, "0badc0de"), http.StatusNotFound},
		{"another issuer", http.MethodGet, "/" + otherIssuer, http.StatusNotFound},
		{"no certID", http.MethodGet, "/", http.StatusNotFound},
		{"POST", http.MethodPost, "/" + certIDOf(leaf), http.StatusMethodNotAllowed},
		{"DELETE", http.MethodDelete, "/" + certIDOf(leaf), http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, base+tt.path, strings.NewReader(""))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r := &response{status: resp.StatusCode, header: resp.Header, body: body}
			problemType(t, r, tt.status, "malformed")
			if tt.method == http.MethodPost && r.header.Get("Replay-Nonce") == "" {
				t.Fatal("a POST answered without Replay-Nonce")
			}
			if tt.method == http.MethodGet && tt.path != "/" && r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("a refusal is cached: Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}
}

func TestReplacesHTTP(t *testing.T) {
	e := newEABEnv(t, authority.EABOptional)
	c := e.account("open")
	first, leaf := c.issue(nil, "a.example", "b.example")
	serial := acme.SerialHex(leaf.SerialNumber)
	// Certificate URLs show the canonical serial, and take any form.
	if !strings.HasSuffix(first.Certificate, "/"+serial) {
		t.Fatalf("certificate URL %s, want it to end with %s", first.Certificate, serial)
	}
	upper := strings.TrimSuffix(first.Certificate, serial) + strings.ToUpper(serial)
	c.must(http.StatusOK, upper, nil, nil)

	// The order shows what it replaces; its certificate records it.
	r := c.orderWith(map[string]any{"replaces": certIDOf(leaf)}, "a.example", "b.example")
	var o order
	if r.status != http.StatusCreated || json.Unmarshal(r.body, &o) != nil {
		t.Fatalf("new order replacing: %d %s", r.status, r.body)
	}
	var echo struct {
		Replaces string `json:"replaces"`
	}
	if err := json.Unmarshal(r.body, &echo); err != nil || echo.Replaces != certIDOf(leaf) {
		t.Fatalf("order replaces %q, want %q", echo.Replaces, certIDOf(leaf))
	}
	o.url = r.header.Get("Location")
	c.authorize(&o)
	second, chain := c.finalizeChain(&o, csrDER(t, newKey(t), "", "a.example", "b.example"))
	next, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	stored, err := e.st.Certificate(t.Context(), acme.SerialHex(next.SerialNumber))
	if err != nil || stored.Replaces != serial || stored.EABKeyName != "open" {
		t.Fatalf("new certificate %s: %+v, %v; want it to replace %s, from EAB key open", second.Certificate, stored, err, serial)
	}

	// A certificate already replaced: 409 alreadyReplaced, which lego
	// and Caddy answer by ordering again without replaces.
	if _, err := e.st.UpdateCertificate(t.Context(), serial, func(c *acme.Certificate) error {
		c.ReplacedBy = acme.SerialHex(next.SerialNumber)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	other := e.account("")
	tests := []struct {
		name     string
		by       *client
		names    []string
		replaces string
		status   int
		typ      *acme.Problem
	}{
		{"replaced already", c, []string{"a.example"}, certIDOf(leaf), http.StatusConflict, acme.ErrAlreadyReplaced},
		{"another account's", other, []string{"a.example"}, certIDOf(next), http.StatusForbidden, acme.ErrUnauthorized},
		{"no identifier in common", c, []string{"c.example"}, certIDOf(next), http.StatusBadRequest, acme.ErrMalformed},
		{"unknown", c, []string{"a.example"}, acme.CertID(leaf.AuthorityKeyId, "0badc0de"), http.StatusNotFound, acme.ErrMalformed},
		{"malformed", c, []string{"a.example"}, "nope", http.StatusBadRequest, acme.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.by.orderWith(map[string]any{"replaces": tt.replaces}, tt.names...)
			problemType(t, r, tt.status, strings.TrimPrefix(tt.typ.Type, "urn:ietf:params:acme:error:"))
			if r.header.Get("Replay-Nonce") == "" {
				t.Fatal("refusal without Replay-Nonce")
			}
		})
	}
}
