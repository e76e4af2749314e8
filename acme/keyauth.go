package acme

import (
	"crypto"
	"encoding/base64"
	"fmt"

	"github.com/go-jose/go-jose/v4"
)

// Thumbprint is the RFC 7638 SHA-256 thumbprint of a JWK, base64url encoded.
func Thumbprint(key *jose.JSONWebKey) (string, error) {
	sum, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// KeyAuthorization is token || '.' || thumbprint (RFC 8555 §8.1).
func KeyAuthorization(token, thumbprint string) string {
	return token + "." + thumbprint
}
