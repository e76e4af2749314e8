package api_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func strp(s string) *string { return &s }

// TestJWSRules sends one request per rule of RFC 8555 §6 that it breaks and
// checks the exact problem, and that even the error carries a fresh nonce
// and the index link.
func TestJWSRules(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	newOrder := e.url("/acme/new-order")
	orderPayload := map[string]any{"identifiers": []map[string]string{{"type": "dns", "value": "a.example"}}}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	used := e.nonce()
	c.post(e.url("/acme/new-account"), map[string]any{"onlyReturnExisting": true}, jwsOpts{useJWK: true, nonce: &used})

	tests := []struct {
		name    string
		url     string
		payload any
		opts    jwsOpts
		raw     []byte // sent as is instead of a signed request
		status  int
		typ     string
	}{
		{name: "wrong content type", url: newOrder, payload: orderPayload, opts: jwsOpts{ctype: "application/json"}, status: 415, typ: "malformed"},
		{name: "body too large", url: newOrder, raw: []byte(`{"protected":"` + strings.Repeat("A", 70<<10) + `"}`), status: 413, typ: "malformed"},
		{name: "not JSON", url: newOrder, raw: []byte("not json"), status: 400, typ: "malformed"},
		{name: "compact serialization", url: newOrder, raw: []byte(`"eyJhbGciOiJFUzI1NiJ9.e30.sig"`), status: 400, typ: "malformed"},
		{name: "unprotected header", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) { m["header"] = map[string]any{"kid": "x"} }}, status: 400, typ: "malformed"},
		{name: "several signatures", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) {
				m["signatures"] = []any{map[string]any{"protected": m["protected"], "signature": m["signature"]}}
			}}, status: 400, typ: "malformed"},
		{name: "alg none", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) {
				m["protected"] = b64(`{"alg":"none","nonce":"x","url":"` + newOrder + `","kid":"` + c.kid + `"}`)
			}},
			status: 400, typ: "badSignatureAlgorithm"},
		{name: "alg HS256", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) {
				m["protected"] = b64(`{"alg":"HS256","nonce":"x","url":"` + newOrder + `","kid":"` + c.kid + `"}`)
			}},
			status: 400, typ: "badSignatureAlgorithm"},
		{name: "jwk and kid", url: newOrder, payload: orderPayload,
			opts: jwsOpts{useJWK: true, extra: map[jose.HeaderKey]any{"kid": c.kid}}, status: 400, typ: "malformed"},
		{name: "jwk where kid is required", url: newOrder, payload: orderPayload, opts: jwsOpts{useJWK: true}, status: 400, typ: "malformed"},
		{name: "kid on newAccount", url: e.url("/acme/new-account"), payload: map[string]any{}, status: 400, typ: "malformed"},
		{name: "url mismatch", url: newOrder, payload: orderPayload, opts: jwsOpts{url: e.url("/acme/new-account")}, status: 403, typ: "unauthorized"},
		{name: "missing nonce", url: newOrder, payload: orderPayload, opts: jwsOpts{nonce: strp("")}, status: 400, typ: "badNonce"},
		{name: "unknown nonce", url: newOrder, payload: orderPayload, opts: jwsOpts{nonce: strp("AAAAAAAAAAAAAAAAAAAAAA")}, status: 400, typ: "badNonce"},
		{name: "reused nonce", url: newOrder, payload: orderPayload, opts: jwsOpts{nonce: &used}, status: 400, typ: "badNonce"},
		{name: "bad signature", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) { m["payload"] = b64(`{"identifiers":[]}`) }}, status: 400, typ: "malformed"},
		{name: "signed by another key", url: newOrder, payload: orderPayload,
			opts: jwsOpts{key: p384, alg: jose.ES384}, status: 400, typ: "malformed"},
		{name: "alg does not fit key", url: newOrder, payload: orderPayload,
			opts: jwsOpts{mutate: func(m map[string]any) {
				m["protected"] = b64(`{"alg":"RS256","nonce":"x","url":"` + newOrder + `","kid":"` + c.kid + `"}`)
			}},
			status: 400, typ: "malformed"},
		{name: "unknown account", url: newOrder, payload: orderPayload,
			opts: jwsOpts{noKID: true, extra: map[jose.HeaderKey]any{"kid": e.url("/acme/account/nope")}}, status: 400, typ: "accountDoesNotExist"},
		{name: "kid of another server", url: newOrder, payload: orderPayload, opts: jwsOpts{noKID: true, extra: map[jose.HeaderKey]any{"kid": "https://elsewhere/acme/account/x"}}, status: 400, typ: "accountDoesNotExist"},
		{name: "RSA key too small", url: e.url("/acme/new-account"), payload: map[string]any{}, opts: jwsOpts{useJWK: true, key: rsa1024, alg: jose.RS256}, status: 400, typ: "badPublicKey"},
		{name: "payload not JSON", url: newOrder, payload: []byte("{"), status: 400, typ: "malformed"},
		{name: "payload wrong shape", url: newOrder, payload: []byte(`{"identifiers":"a.example"}`), status: 400, typ: "malformed"},
		{name: "empty payload on newOrder", url: newOrder, payload: nil, status: 400, typ: "malformed"},
		{name: "unknown endpoint", url: e.url("/acme/nothing"), payload: orderPayload, status: 404, typ: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r *response
			if tt.raw != nil {
				r = c.postRaw(tt.url, tt.raw, "")
			} else {
				r = c.post(tt.url, tt.payload, tt.opts)
			}
			p := r.problem(t)
			if r.status != tt.status || p.Type != "urn:ietf:params:acme:error:"+tt.typ {
				t.Fatalf("got %d %s (%s), want %d %s", r.status, p.Type, p.Detail, tt.status, tt.typ)
			}
			if p.Detail == "" {
				t.Error("problem has no detail")
			}
			if r.header.Get("Replay-Nonce") == "" {
				t.Error("error response has no Replay-Nonce")
			}
			if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if !strings.Contains(r.header.Get("Link"), `rel="index"`) {
				t.Errorf("no index link: %q", r.header.Values("Link"))
			}
		})
	}
}

func TestAcceptedAlgorithms(t *testing.T) {
	e := newEnv(t)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for _, tt := range []struct {
		alg jose.SignatureAlgorithm
		key crypto.Signer
	}{{jose.RS256, rsaKey}, {jose.ES384, p384}, {jose.EdDSA, ed}} {
		t.Run(string(tt.alg), func(t *testing.T) {
			c := e.newClient()
			c.key, c.alg = tt.key, tt.alg
			c.register()
			c.newOrder("alg.example")
		})
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
