package api_test

import (
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// innerJWS signs the key-change payload with newKey as §7.3.5 asks, then
// lets a test break one rule.
func innerJWS(t *testing.T, newKey crypto.Signer, url string, payload any, extra map[jose.HeaderKey]any, withKID string) []byte {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: withKID == "", ExtraHeaders: map[jose.HeaderKey]any{"url": url}}
	for k, v := range extra {
		opts.ExtraHeaders[k] = v
	}
	var key any = newKey
	if withKID != "" {
		key = jose.JSONWebKey{Key: newKey, KeyID: withKID}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(payload)
	jws, err := signer.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(jws.FullSerialize())
}

func TestKeyChange(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	other := e.newClient()
	other.register()
	kc := e.url("/acme/key-change")
	oldJWK := jose.JSONWebKey{Key: c.key.Public()}
	next := newKey(t)
	good := map[string]any{"account": c.kid, "oldKey": oldJWK}

	tests := []struct {
		name   string
		inner  []byte
		status int
		typ    string
	}{
		{"inner with kid", innerJWS(t, next, kc, good, nil, c.kid), 400, "malformed"},
		{"inner with nonce", innerJWS(t, next, kc, good, map[jose.HeaderKey]any{"nonce": "abc"}, ""), 400, "malformed"},
		{"inner url differs", innerJWS(t, next, e.url("/acme/new-order"), good, nil, ""), 400, "malformed"},
		{"wrong account", innerJWS(t, next, kc, map[string]any{"account": other.kid, "oldKey": oldJWK}, nil, ""), 403, "unauthorized"},
		{"wrong old key", innerJWS(t, next, kc, map[string]any{"account": c.kid, "oldKey": jose.JSONWebKey{Key: next.Public()}}, nil, ""), 400, "malformed"},
		{"inner not a JWS", []byte(`{"account":"x"}`), 400, "malformed"},
		{"new key is another account's", innerJWS(t, other.key, kc, good, nil, ""), 409, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.post(kc, tt.inner, jwsOpts{})
			problemType(t, r, tt.status, tt.typ)
			if tt.status == http.StatusConflict && r.header.Get("Location") != other.kid {
				t.Errorf("409 Location %q, want %q", r.header.Get("Location"), other.kid)
			}
		})
	}
	c.must(200, kc, innerJWS(t, next, kc, good, nil, ""), nil)
	// The old key no longer signs for the account; the new one does.
	problemType(t, c.post(c.kid, nil, jwsOpts{}), 400, "malformed")
	c.key = next
	c.must(200, c.kid, nil, nil)
}

func TestAccountOrdersPagination(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	const n = 103
	want := map[string]bool{}
	for i := range n {
		want[c.newOrder(fmt.Sprintf("o%d.example", i)).url] = true
	}
	url, pages, seen := c.kid+"/orders", 0, 0
	for url != "" {
		var list struct {
			Orders []string `json:"orders"`
		}
		r := c.must(200, url, nil, &list)
		pages++
		for _, o := range list.Orders {
			if !want[o] {
				t.Fatalf("unexpected order %s", o)
			}
			delete(want, o)
			seen++
		}
		url = ""
		for _, l := range r.header.Values("Link") {
			if u, ok := strings.CutSuffix(l, `>;rel="next"`); ok {
				url = strings.TrimPrefix(u, "<")
			}
		}
	}
	if seen != n || pages != 2 {
		t.Fatalf("saw %d orders on %d pages, want %d on 2", seen, pages, n)
	}
}
