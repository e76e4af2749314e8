// Package nonce is the format of acmed's anti-replay nonces (RFC 8555
// §6.5): stateless, so that handing one out writes nothing anywhere.
//
// A nonce is the unpadded base64url form of 45 bytes:
//
//	version (1) | key epoch (4, big endian) | issue time (8, Unix ms, big endian)
//	| random (16) | HMAC-SHA256 of the 29 bytes before, truncated (16)
//
// The MAC key is that of the epoch the nonce names: every replica reads
// the same key from the store (DESIGN.md decision 3), so any replica
// checks any nonce with no store access once it holds the key. What a
// MAC cannot tell, whether the nonce was already spent, is the store's to
// record; ID names a nonce for that record.
//
// The package is pure: no clock, no randomness, no I/O. Callers pass the
// time, the random bytes and the key.
package nonce

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"sync"
	"time"
)

const (
	// KeySize is the size of an epoch's MAC key.
	KeySize = 32
	// RandomSize is the size of a nonce's random part: 128 bits, so two
	// nonces never share one.
	RandomSize = 16

	version  = 1
	tagSize  = 16 // 128 bits of HMAC-SHA256: forging one is 2^-128 a try
	bodySize = 1 + 4 + 8 + RandomSize
	rawSize  = bodySize + tagSize // 45: a multiple of 3, so no padding bits
)

// Len is the length of a nonce's text form.
var Len = enc.EncodedLen(rawSize)

// enc is strict so that exactly one text decodes to a given nonce: with
// padding bits ignored, one nonce would have several spellings, each
// looking unspent. (45 bytes leave no padding bits; strictness is the
// belt to that brace.)
var enc = base64.RawURLEncoding.Strict()

var (
	// ErrMalformed: not a nonce of this format.
	ErrMalformed = errors.New("nonce: malformed")
	// ErrTag: the MAC does not verify under the epoch's key: forged,
	// altered, or issued under a key this store no longer has.
	ErrTag = errors.New("nonce: not issued by this server")
	// ErrExpired: issued longer ago than the nonce lifetime.
	ErrExpired = errors.New("nonce: expired")
	// ErrFuture: issued later than now, beyond the clock skew allowed.
	ErrFuture = errors.New("nonce: issued in the future")
	// ErrEpoch: the epoch does not match the issue time.
	ErrEpoch = errors.New("nonce: epoch does not match its issue time")
)

// Nonce is what a nonce says about itself.
type Nonce struct {
	Epoch  uint32
	Issued time.Time // Unix milliseconds
	Random [RandomSize]byte
}

// Key is an epoch's MAC key, ready to use: it keeps HMAC states with the
// key already absorbed, since setting one up costs as much as the MAC
// itself. It is safe for concurrent use.
type Key struct {
	macs sync.Pool // of hash.Hash
}

// NewKey prepares secret (KeySize bytes) for Seal and Verify.
func NewKey(secret []byte) *Key {
	secret = bytes.Clone(secret)
	return &Key{macs: sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}
}

func (k *Key) tag(body []byte) []byte {
	m := k.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(body)
	var sum [sha256.Size]byte
	t := m.Sum(sum[:0])[:tagSize]
	k.macs.Put(m)
	return t
}

// Seal returns n's text form, MACed under key.
func Seal(key *Key, n Nonce) string {
	var raw [rawSize]byte
	raw[0] = version
	binary.BigEndian.PutUint32(raw[1:5], n.Epoch)
	binary.BigEndian.PutUint64(raw[5:13], uint64(n.Issued.UnixMilli()))
	copy(raw[13:bodySize], n.Random[:])
	copy(raw[bodySize:], key.tag(raw[:bodySize]))
	return enc.EncodeToString(raw[:])
}

// Sealed is a parsed nonce whose tag is not checked yet.
type Sealed struct {
	Nonce
	raw [rawSize]byte
}

// Parse decodes s. It checks the form only, never the tag (Verify does),
// and it never panics, whatever s is.
func Parse(s string) (Sealed, error) {
	var p Sealed
	if len(s) != Len {
		return p, ErrMalformed
	}
	n, err := enc.Decode(p.raw[:], []byte(s))
	if err != nil || n != rawSize || p.raw[0] != version {
		return Sealed{}, ErrMalformed
	}
	p.Epoch = binary.BigEndian.Uint32(p.raw[1:5])
	ms := binary.BigEndian.Uint64(p.raw[5:13])
	if ms > 1<<62 { // far beyond any clock, and would overflow as int64
		return Sealed{}, ErrMalformed
	}
	p.Issued = time.UnixMilli(int64(ms)).UTC()
	copy(p.Random[:], p.raw[13:bodySize])
	return p, nil
}

// Verify reports whether p's tag is the MAC of its content under key, in
// constant time.
func (p Sealed) Verify(key *Key) bool {
	return hmac.Equal(p.raw[bodySize:], key.tag(p.raw[:bodySize]))
}

// ID names the nonce in the store's record of spent nonces: its random
// part, which a verified nonce does not share with any other.
func (p Sealed) ID() string {
	return base64.RawURLEncoding.EncodeToString(p.Random[:])
}

// Policy is when a nonce is good, and which key epoch it belongs to.
type Policy struct {
	// Lifetime is how long after its issue a nonce is accepted.
	Lifetime time.Duration
	// Rotation is how long one key is used to issue nonces.
	Rotation time.Duration
	// Skew is how far the replicas' clocks may disagree: a nonce issued
	// that far in the future is still accepted, and one is recorded as
	// spent that much longer than its lifetime.
	Skew time.Duration
}

// Epoch is the key epoch of nonces issued at t.
func (p Policy) Epoch(t time.Time) uint32 {
	ms := t.UnixMilli()
	if ms < 0 {
		return 0
	}
	return uint32(ms / p.Rotation.Milliseconds())
}

// KeyExpires is when the key of epoch e may go: no nonce issued under it
// is accepted after that, by any replica whose clock is within Skew.
func (p Policy) KeyExpires(e uint32) time.Time {
	end := time.UnixMilli((int64(e) + 1) * p.Rotation.Milliseconds())
	return end.Add(p.Lifetime + p.Skew)
}

// Check says whether n may be accepted at now, as far as its times go:
// its tag is the next thing to check.
func (p Policy) Check(n Nonce, now time.Time) error {
	switch {
	case n.Issued.After(now.Add(p.Skew)):
		return ErrFuture
	case !now.Before(n.Issued.Add(p.Lifetime)):
		return ErrExpired
	case n.Epoch != p.Epoch(n.Issued):
		return ErrEpoch
	}
	return nil
}

// SpentUntil is how long the record that n was spent must be kept: until
// no replica would accept n any more.
func (p Policy) SpentUntil(n Nonce) time.Time {
	return n.Issued.Add(p.Lifetime + p.Skew)
}
