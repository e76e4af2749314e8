package acme_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
)

// TestParseEAB: each MAC algorithm §7.3.4 allows verifies; each bad
// binding gets its problem type.
func TestParseEAB(t *testing.T) {
	secret := []byte(strings.Repeat("k", 64))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	account := &jose.JSONWebKey{Key: key.Public()}
	const url = "https://acme.test/acme/new-account"
	mac := func(alg jose.SignatureAlgorithm, kid, u string, payload any) json.RawMessage {
		t.Helper()
		opts := &jose.SignerOptions{}
		if kid != "" {
			opts.WithHeader("kid", kid)
		}
		if u != "" {
			opts.WithHeader("url", u)
		}
		var sk jose.SigningKey
		switch alg {
		case jose.ES256:
			sk = jose.SigningKey{Algorithm: alg, Key: key}
		default:
			sk = jose.SigningKey{Algorithm: alg, Key: secret}
		}
		s, err := jose.NewSigner(sk, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(payload)
		jws, err := s.Sign(raw)
		if err != nil {
			t.Fatal(err)
		}
		return json.RawMessage(jws.FullSerialize())
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512} {
		b, err := acme.ParseEAB(mac(alg, "kid1", url, account), account, url)
		if err != nil || b.KID != "kid1" {
			t.Fatalf("%s: %v", alg, err)
		}
		if err := b.Verify(secret); err != nil {
			t.Fatalf("%s: verify: %v", alg, err)
		}
		if err := b.Verify([]byte(strings.Repeat("x", 64))); !isType(err, "unauthorized") {
			t.Fatalf("%s: verify with another secret: %v", alg, err)
		}
	}
	for _, tc := range []struct {
		name string
		raw  json.RawMessage
		typ  string
	}{
		{"not JSON object", json.RawMessage(`"x.y.z"`), "malformed"},
		{"garbage", json.RawMessage(`{"protected":1}`), "malformed"},
		{"asymmetric alg", mac(jose.ES256, "kid1", url, account), "malformed"},
		{"no kid", mac(jose.HS256, "", url, account), "malformed"},
		{"no url", mac(jose.HS256, "kid1", "", account), "malformed"},
		{"payload not a key", mac(jose.HS256, "kid1", url, map[string]string{"a": "b"}), "malformed"},
		{"other url", mac(jose.HS256, "kid1", "https://acme.test/acme/new-order", account), "unauthorized"},
		{"other key", mac(jose.HS256, "kid1", url, &jose.JSONWebKey{Key: other.Public()}), "unauthorized"},
	} {
		if _, err := acme.ParseEAB(tc.raw, account, url); !isType(err, tc.typ) {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.typ)
		}
	}
}

func isType(err error, typ string) bool {
	p, ok := err.(*acme.Problem)
	return ok && p.Type == "urn:ietf:params:acme:error:"+typ
}

// TestEABKeyBindable: revoked, expired and used single-use keys take no
// new account.
func TestEABKeyBindable(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		key  acme.EABKey
		ok   bool
	}{
		{"fresh", acme.EABKey{}, true},
		{"not yet expired", acme.EABKey{Expires: now.Add(time.Second)}, true},
		{"expired", acme.EABKey{Expires: now}, false},
		{"revoked", acme.EABKey{Revoked: true}, false},
		{"single-use, unused", acme.EABKey{SingleUse: true}, true},
		{"single-use, used", acme.EABKey{SingleUse: true, Accounts: []string{"a"}}, false},
		{"reusable, used", acme.EABKey{Accounts: []string{"a"}}, true},
	} {
		if p := tc.key.Bindable(now); (p == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, p)
		}
	}
}
