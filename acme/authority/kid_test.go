package authority

import (
	"bytes"
	"crypto/rand"
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
