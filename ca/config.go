package ca

import (
	"crypto/rand"
	"io"
	"time"
)

// Config is zero-value usable: nil Rand means crypto/rand.Reader, nil Now
// means time.Now.
//
// Since Go 1.26 the standard library ignores Rand for key generation and
// signatures (see testing/cryptotest.SetGlobalRandom); Rand still decides
// serial numbers and the random part of CA names.
type Config struct {
	Rand io.Reader
	Now  func() time.Time
}

func (c Config) rand() io.Reader {
	if c.Rand == nil {
		return rand.Reader
	}
	return c.Rand
}

func (c Config) now() time.Time {
	if c.Now == nil {
		return time.Now()
	}
	return c.Now()
}
