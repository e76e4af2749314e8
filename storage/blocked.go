package storage

import (
	"context"
	"time"
)

// BlockedKey is a public key reported compromised: a certificate for it
// was revoked for keyCompromise. No certificate is issued for it again,
// and no account takes it as its key.
type BlockedKey struct {
	// Hash is acme.KeyHash of the key: SHA-256 of its DER
	// SubjectPublicKeyInfo, lower-case hex.
	Hash string `json:"hash"`
	// Serial is the certificate whose revocation blocked it (canonical
	// form), and At when.
	Serial string    `json:"serial"`
	At     time.Time `json:"at"`
}

// BlockedKeys keeps the blocked keys, for every replica. They are kept for
// ever (a compromised key stays compromised); there is one small entry
// per key revoked for keyCompromise, so this grows only with those.
//
// A revocation blocks its key in the same write as the certificate's
// update (UpdateCertificate with BlockingKey), where the backend can; a
// lookup rides in a request's first read (Lookup.KeyHash).
type BlockedKeys interface {
	// BlockKey records k unless its key is already blocked, in which
	// case the first record stays; either way it is no error.
	BlockKey(ctx context.Context, k BlockedKey) error
	// BlockedKey returns the record of a blocked key, ErrNotFound for a
	// key not blocked.
	BlockedKey(ctx context.Context, hash string) (*BlockedKey, error)
}

// BlockingKey blocks k with a certificate's update, if the update writes
// (BlockKey's rules: a key already blocked keeps its first record). On a
// Redis Cluster it is a further step once the certificate's write stood.
func BlockingKey(k BlockedKey) Option {
	return func(o *Options) { o.BlockKey = &k }
}
