package responder_test

import (
	"crypto"
	"testing"
	"time"

	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
)

// BenchmarkPOST is one OCSP request over loopback HTTP answered from the
// embedded store: signed afresh every time, and with the signed answer
// reused.
func BenchmarkPOST(b *testing.B) {
	for _, bc := range []struct {
		name  string
		reuse time.Duration
	}{{"signed", -1}, {"reused", responder.DefaultReuse}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, func(c *responder.Config, _ *ca.Local) { c.Reuse = bc.reuse })
			l := e.issue("bench.example")
			der := request(b, l.cert, e.ca.Intermediate(), crypto.SHA1)
			for b.Loop() {
				e.post(der)
			}
		})
	}
}
