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
	// AllowExpired makes Load accept an expired intermediate: a rotated
	// CA's first one, in --data, still names the root, the store's CA
	// and the key-encryption key after it expires. The caller then
	// checks the intermediate it signs with.
	AllowExpired bool
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
