package redis

import (
	"fmt"
	"hash/fnv"
	"strconv"
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
	jobsGroup = "workers"
	jobField  = "job"
	// jobStreams is how many job streams there are, each under its own
	// hash tag, so a Cluster spreads the job traffic over its shards. It
	// is a constant, not a setting: every replica must consume every
	// stream any replica queues to.
	jobStreams = 16
	// legacyJobsKey is the one stream an earlier acmed kept. Consume
	// still reclaims what it holds; nothing is queued to it any more.
	legacyJobsKey = prefix + "{jobs}"
)

// jobStreamKey is the key of job stream i, 0 <= i < jobStreams.
func jobStreamKey(i int) string { return prefix + "{jobs:" + strconv.Itoa(i) + "}" }

// jobStream picks the stream of j by a hash of its resource's ID, whose
// random part spreads jobs evenly.
func jobStream(j storage.Job) int {
	id := j.OrderID
	if id == "" {
		id = j.AuthzID
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(id))
	return int(h.Sum32() % jobStreams)
}

// claimID makes the claim ID of entry in stream i: "i/ENTRY". A claim ID
// without a slash is an entry of legacyJobsKey.
func claimID(i int, entry string) string { return strconv.Itoa(i) + "/" + entry }

// claimEntry returns the stream key and entry ID a claim ID names.
func claimEntry(id string) (key, entry string, err error) {
	i, entry, ok := strings.Cut(id, "/")
	if !ok {
		return legacyJobsKey, id, nil
	}
	n, err := strconv.Atoi(i)
	if err != nil || n < 0 || n >= jobStreams || entry == "" {
		return "", "", fmt.Errorf("redis: claim ID %q is not one this store hands out", id)
	}
	return jobStreamKey(n), entry, nil
}

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

// accountListKey is the sorted set of every account ID (ListAccounts).
const accountListKey = prefix + "{accounts}"

func orderKey(id string) string { return prefix + scopeTag(id) + ":order:" + id }
func authzKey(id string) string { return prefix + scopeTag(id) + ":authz:" + id }
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
