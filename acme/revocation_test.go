package acme

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCheckRevocationReason(t *testing.T) {
	for code := -1; code <= 11; code++ {
		allowed := code == 0 || code == 1 || code == 3 || code == 4 || code == 5 || code == 9
		p := CheckRevocationReason(RevocationReason(code))
		if allowed != (p == nil) {
			t.Errorf("reason %d: problem %v, want allowed=%v", code, p, allowed)
			continue
		}
		if p == nil {
			continue
		}
		if !errors.Is(p, ErrBadRevocationReason) {
			t.Errorf("reason %d: %v, want badRevocationReason", code, p)
		}
		const list = "0 (unspecified), 1 (keyCompromise), 3 (affiliationChanged), 4 (superseded), 5 (cessationOfOperation), 9 (privilegeWithdrawn)"
		if !strings.Contains(p.Detail, list) {
			t.Errorf("reason %d: detail %q does not list the allowed reasons", code, p.Detail)
		}
	}
}

func TestRevokeTransitions(t *testing.T) {
	at := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	later := at.Add(time.Hour)
	tests := []struct {
		name       string
		cur        Certificate
		reason     int
		want       *Problem
		wantReason int
		wantAt     time.Time
	}{
		{"unrevoked", Certificate{}, 4, nil, 4, later},
		{"again", Certificate{Revoked: true, RevokedAt: at, Reason: 4}, 4, ErrAlreadyRevoked, 4, at},
		{"again, another reason", Certificate{Revoked: true, RevokedAt: at, Reason: 4}, 5, ErrAlreadyRevoked, 4, at},
		{"keyCompromise after another reason", Certificate{Revoked: true, RevokedAt: at, Reason: 4}, 1, nil, 1, at},
		{"keyCompromise again", Certificate{Revoked: true, RevokedAt: at, Reason: 1}, 1, ErrAlreadyRevoked, 1, at},
		{"another reason after keyCompromise", Certificate{Revoked: true, RevokedAt: at, Reason: 1}, 0, ErrAlreadyRevoked, 1, at},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cur
			c.Serial = "0a"
			err := Revoke(&c, tt.reason, later)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("Revoke: %v, want %v", err, tt.want)
			}
			if !c.Revoked || c.Reason != tt.wantReason || !c.RevokedAt.Equal(tt.wantAt) {
				t.Fatalf("after Revoke: revoked %v reason %d at %v; want reason %d at %v", c.Revoked, c.Reason, c.RevokedAt, tt.wantReason, tt.wantAt)
			}
		})
	}
}

// TestKeyHash: a key hashes alike as a CSR's, a certificate's and a
// parsed public key, for every key type; what is not a CSR has no hash.
func TestKeyHash(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"ecdsa": ec, "rsa": rk, "ed25519": ed} {
		t.Run(name, func(t *testing.T) {
			csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example"}}, key)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err := x509.ParseCertificateRequest(csr)
			if err != nil {
				t.Fatal(err)
			}
			want := KeyHash(parsed.RawSubjectPublicKeyInfo)
			got, ok := CSRKeyHash(csr)
			if !ok || got != want {
				t.Fatalf("CSRKeyHash = %q, %v; want %q", got, ok, want)
			}
			fromPub, err := PublicKeyHash(key.Public())
			if err != nil || fromPub != want {
				t.Fatalf("PublicKeyHash = %q, %v; want %q", fromPub, err, want)
			}
			if len(want) != 64 || strings.ToLower(want) != want {
				t.Fatalf("hash %q is not lower-case hex SHA-256", want)
			}
		})
	}
	for _, junk := range [][]byte{nil, []byte("junk"), {0x30, 0x03, 0x30, 0x01, 0x02}} {
		if h, ok := CSRKeyHash(junk); ok {
			t.Errorf("CSRKeyHash(%x) = %q, want not a CSR", junk, h)
		}
	}
}

// BenchmarkCSRKeyHash: what a finalize request pays to look its CSR's key
// up among the blocked ones in its first read.
func BenchmarkCSRKeyHash(b *testing.B) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example"}}, k)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok := CSRKeyHash(csr); !ok {
			b.Fatal("not a CSR")
		}
	}
}
