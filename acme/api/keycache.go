package api

import (
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// maxCachedKeys bounds the key cache: a few thousand active accounts cost a
// few megabytes, and past that a cleared cache only costs each account one
// parse again.
const maxCachedKeys = 4096

// keyCache keeps account keys parsed. Every kid-signed request needs its
// account's key, and parsing the stored JWK (JSON, then the point's curve
// check) cost more than the rest of the lookup. Entries are keyed by the
// JWK's bytes, so a key change is a new entry, never a stale one.
type keyCache struct {
	mu   sync.Mutex
	keys map[string]*jose.JSONWebKey
}

// parse returns the key raw encodes. The returned key is shared: callers
// only verify with it.
func (c *keyCache) parse(raw []byte) (*jose.JSONWebKey, error) {
	c.mu.Lock()
	k, ok := c.keys[string(raw)]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	k = new(jose.JSONWebKey)
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil || len(c.keys) >= maxCachedKeys {
		c.keys = make(map[string]*jose.JSONWebKey)
	}
	c.keys[string(raw)] = k
	return k, nil
}
