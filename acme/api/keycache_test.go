package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

func TestKeyCache(t *testing.T) {
	var c keyCache
	raw := func(t *testing.T) []byte {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		b, err := (&jose.JSONWebKey{Key: k.Public()}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	first := raw(t)
	a, err := c.parse(first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.parse(append([]byte(nil), first...))
	if err != nil || a != b {
		t.Fatalf("second parse of the same JWK: %p, %v; want the cached %p", b, err, a)
	}
	if _, err := c.parse([]byte(`{"kty":"EC"}`)); err == nil {
		t.Fatal("an invalid JWK parsed")
	}
	for range maxCachedKeys {
		if _, err := c.parse(raw(t)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(c.keys); n > maxCachedKeys {
		t.Fatalf("cache holds %d keys, more than %d", n, maxCachedKeys)
	}
}
