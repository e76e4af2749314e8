package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
)

// checkChain checks what a client must before using a certificate: the
// chain parses, the leaf names name and holds the CSR's key, and each
// certificate is signed by the next. Trust in a root is not checked; the
// server's HTTPS root need not be its issuing root.
func checkChain(der [][]byte, name string, key *ecdsa.PrivateKey) error {
	if len(der) == 0 {
		return errors.New("empty chain")
	}
	certs := make([]*x509.Certificate, len(der))
	for i, d := range der {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return fmt.Errorf("chain[%d]: %w", i, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	if err := leaf.VerifyHostname(name); err != nil {
		return err
	}
	if pub, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("leaf does not hold the CSR's key")
	}
	for i := 0; i+1 < len(certs); i++ {
		if err := certs[i].CheckSignatureFrom(certs[i+1]); err != nil {
			return fmt.Errorf("chain[%d] not signed by chain[%d]: %w", i, i+1, err)
		}
	}
	return nil
}
