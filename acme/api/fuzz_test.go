package api

import (
	"errors"
	"testing"

	"github.com/acmed/acmed/acme"
)

// FuzzParseJWS: whatever the body, parsing returns a JWS or a problem; it
// never panics and never fails with an error a client cannot be shown.
func FuzzParseJWS(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiIsIm5vbmNlIjoieCIsInVybCI6InkiLCJraWQiOiJ6In0","payload":"","signature":"AAAA"}`))
	f.Add([]byte(`{"protected":"e30","payload":"e30","signature":"x","header":{}}`))
	f.Add([]byte(`{"signatures":[]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"protected":"eyJhbGciOiJub25lIn0","payload":"","signature":""}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parseJWS(body)
		var prob *acme.Problem
		if err != nil && !errors.As(err, &prob) {
			t.Fatalf("non-problem error %v", err)
		}
		if err == nil && p == nil {
			t.Fatal("nil JWS without error")
		}
	})
}
