package authority

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"io"
	"testing"
)

// TestEABKIDNoLeadingDash: a kid is a command-line argument (acmed admin
// eab show KID, lego --kid KID), where a leading '-' reads as a flag.
func TestEABKIDNoLeadingDash(t *testing.T) {
	// A source whose first draw encodes to a leading '-' (0xfb: 111110..).
	first := append([]byte{0xfb}, make([]byte, 15)...)
	a := &Authority{cfg: Config{Rand: io.MultiReader(bytes.NewReader(first), rand.Reader)}}
	kid, err := a.newKID()
	if err != nil || kid == "" || kid[0] == '-' {
		t.Fatalf("newKID = %q, %v", kid, err)
	}
}

// TestEABSecretNoLeadingDash: the MAC key is an argument too (certbot
// --eab-hmac-key KEY); TestCertbotEAB failed once on a key starting '-'.
func TestEABSecretNoLeadingDash(t *testing.T) {
	first := append([]byte{0xfb}, make([]byte, eabSecretBytes-1)...)
	a := &Authority{cfg: Config{Rand: io.MultiReader(bytes.NewReader(first), rand.Reader)}}
	secret, err := a.newEABSecret()
	if err != nil {
		t.Fatal(err)
	}
	if s := base64.RawURLEncoding.EncodeToString(secret); s[0] == '-' {
		t.Fatalf("newEABSecret encodes to %q…", s[:8])
	}
}
