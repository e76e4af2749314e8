package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
)

// BenchmarkCryptoFloor measures the cryptography one issuance cannot avoid:
// an ES256 verification per JWS request, one CSR signature check and one
// certificate signature. The floor of an issuance with k JWS requests is
// k×ES256Verify + CSRCheck + Sign; the server's CPU per issuance is
// compared with it.
func BenchmarkCryptoFloor(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("a JWS signing input"))
	sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
	b.Run("ES256Verify", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				b.Fatal("bad signature")
			}
		}
	})
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"floor.example"}}, key)
	b.Run("CSRCheck", func(b *testing.B) {
		for b.Loop() {
			csr, err := x509.ParseCertificateRequest(der)
			if err != nil || csr.CheckSignature() != nil {
				b.Fatal(err)
			}
		}
	})
	l, _ := newCA(b, ca.Config{})
	now := time.Now()
	b.Run("Sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Sign(context.Background(), ca.Request{PublicKey: key.Public(), DNSNames: []string{"floor.example"},
				NotBefore: now, NotAfter: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
