package redis

import (
	"strings"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

// Key names; the package documentation has the table. A {hash tag} decides
// the Cluster slot: everything of one account shares {a:ACCOUNTID}, so a
// script may touch an order, its authorizations and the account's indexes
// at once.
const (
	prefix    = "acmed:"
	jobsKey   = prefix + "{jobs}"
	jobsGroup = "workers"
	jobField  = "job"
)

func accountTag(accountID string) string { return "{a:" + accountID + "}" }

// scopeTag keeps a ScopedID with its account. An ID without a scope gets a
// tag of its own; the suite uses such IDs, and they work, only with fewer
// operations in one script on a Cluster.
func scopeTag(id string) string {
	if scope := storage.Scope(id); scope != "" {
		return accountTag(scope)
	}
	return "{o:" + id + "}"
}

func accountKey(id string) string         { return prefix + accountTag(id) + ":account" }
func accountKeyIndex(thumb string) string { return prefix + "acctkey:" + thumb }
func orderKey(id string) string           { return prefix + scopeTag(id) + ":order:" + id }
func authzKey(id string) string           { return prefix + scopeTag(id) + ":authz:" + id }
func orderListKey(accountID string) string {
	return prefix + accountTag(accountID) + ":orders"
}
func certKey(serial string) string { return prefix + "cert:" + serial }
func nonceKey(nonce string) string { return prefix + "nonce:" + nonce }

// validAuthzKey ends in the wildcard flag, which has a fixed width, and
// starts with a type that has no colon, so an IPv6 value cannot make two
// identifiers collide.
func validAuthzKey(accountID string, id acme.Identifier, wildcard bool) string {
	w := "0"
	if wildcard {
		w = "1"
	}
	return prefix + accountTag(accountID) + ":validauthz:" + string(id.Type) + ":" + id.Value + ":" + w
}

// hashTag is the part of key Redis Cluster hashes: the text between the
// first { and the next }, if not empty, else the whole key.
func hashTag(key string) string {
	_, after, ok := strings.Cut(key, "{")
	if !ok {
		return key
	}
	tag, _, ok := strings.Cut(after, "}")
	if !ok || tag == "" {
		return key
	}
	return tag
}

// oneSlot reports whether one script or MGET may take all of keys. Only a
// Cluster cares; a single server takes any keys together.
func (s *Store) oneSlot(keys ...string) bool {
	if !s.cluster || len(keys) == 0 {
		return true
	}
	tag := hashTag(keys[0])
	for _, k := range keys[1:] {
		if hashTag(k) != tag {
			return false
		}
	}
	return true
}
