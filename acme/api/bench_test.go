package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkParseAndVerifyJWS is the JWS half of every POST: parse the
// flattened JSON, check the header, verify an ES256 signature.
func BenchmarkParseAndVerifyJWS(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "https://acme.test/acme/account/abc"}},
		&jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": "https://acme.test/acme/new-order", "nonce": "AAAAAAAAAAAAAAAAAAAAAA"}})
	if err != nil {
		b.Fatal(err)
	}
	jws, err := signer.Sign([]byte(`{"identifiers":[{"type":"dns","value":"bench.example"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(jws.FullSerialize())
	pub := &jose.JSONWebKey{Key: key.Public()}
	b.ReportAllocs()
	for b.Loop() {
		p, err := parseJWS(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}
