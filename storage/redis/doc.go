// Package redis is acmed's production store: Redis 7.0 or later, standalone,
// behind Sentinel or as a Cluster, shared by any number of acmed replicas
// (DESIGN.md decision 5).
//
// # URL
//
//	redis://[user:pass@]host:port[/db]                       one server
//	rediss://…                                               the same over TLS
//	redis+sentinel://[user:pass@]host:port,host:port,…/MASTERNAME[/db]
//	rediss+sentinel://…                                      Sentinel, TLS
//	redis+cluster://[user:pass@]host:port,host:port,…        Cluster seed nodes
//	rediss+cluster://…                                       Cluster, TLS
//
// A missing port means 6379 (26379 for sentinels); IPv6 addresses go in
// brackets; user and password are percent-encoded and, with Sentinel, are
// those of the data nodes. Query parameters:
//
//	dial_timeout=2s      per connection attempt
//	read_timeout=2s      per reply
//	write_timeout=2s     per command
//	pool_size=N          connections per node (go-redis default: 10 per CPU)
//	sentinel_username=   for the sentinels themselves (Sentinel only)
//	sentinel_password=
//
// Timeouts are short, and no command is sent twice, so a request whose
// Redis is down fails within seconds with storage.ErrUnavailable (HTTP 503)
// rather than hang or, resent after a lost reply, apply twice.
//
// # Keys
//
// Every key starts with "acmed:". A {hash tag} picks the Cluster slot; all
// of an account's orders, authorizations and indexes share {a:ACCOUNTID},
// for the IDs the authority makes with storage.ScopedID ("ACCOUNTID.RANDOM").
// An ID without a scope gets its own tag {o:ID}; it works, in fewer steps
// that are each atomic (see createSpread).
//
//	key                                           type    value                 TTL
//	acmed:{a:ACCOUNT}:account                     string  account record        none
//	acmed:acctkey:THUMBPRINT                      string  account ID            none
//	acmed:{accounts}                              zset    account IDs (score 0) none: the admin API lists accounts from it
//	acmed:{eab}:key:KID                           string  EAB key, JSON         none: an expired key still binds its accounts
//	acmed:{eab}:kids                              set     EAB key IDs           none: the admin API lists keys from it
//	acmed:ca                                      string  JSON: the CA's root and intermediate SHA-256 fingerprints  none
//	acmed:issuers                                 string  JSON: the CA's issuer set (rotation), keys wrapped    none
//	acmed:{a:ACCOUNT}:order:ORDERID               string  order record          Expires+OrderTTL; valid: Expires+Retention
//	acmed:{a:ACCOUNT}:authz:AUTHZID               string  authorization record  Expires+OrderTTL, raised to the TTL of any order listing it, never lowered
//	acmed:{a:ACCOUNT}:orders                      zset    order IDs by creation time (ms)  that of its longest-lived order; old entries trimmed on each add
//	acmed:{a:ACCOUNT}:validauthz:TYPE:VALUE:W     string  authorization ID (W: 1 wildcard, 0 not)  that of the authorization
//	acmed:cert:SERIAL                             string  certificate record    NotAfter+Retention
//	acmed:nonce:NONCEID                           string  ""                    a spent nonce, until it expires (+ clock skew)
//	acmed:noncekey:EPOCH                          string  MAC key of the epoch's nonces  until its last nonce expires (+ skew)
//	acmed:{jobs:N}                                stream  job JSON, group "workers"  none; MAXLEN ~6250 each, finished jobs deleted
//	acmed:{jobs}                                  stream  an earlier acmed's jobs, reclaimed, never added to  none
//	acmed:{a:ACCOUNT}:limit:NAME                  string  a rate limit's theoretical arrival time (µs)  until that time
//	acmed:{l:NAME}                                string  the same, for a limit of no account (an IP, a name set)  until that time
//	acmed:{inv}:meta                              hash    serial -> inventory entry (luaInventory)  these {inv} keys: that of their longest-kept certificate; entries trimmed by notAfter
//	acmed:{inv}:exp, :revoked                     zset    serials by notAfter (ms): all, revoked
//	acmed:{inv}:acct:ACCOUNT, :prof:PROFILE       zset    serials by notAfter, of an account, of a profile
//	acmed:{inv}:names                             zset    reversed DNS names and IP addresses, NUL, serial (lexical)
//	acmed:{inv}:win, :due                         zset    unrevoked, unreplaced serials by window start; those whose window started, by notAfter
//	acmed:{inv}:latest                            hash    account and identifier set -> latest serial (replacement)
//	acmed:{inv}:stats                             hash    promotion position of due, longest lifetime, campaign sequence, revocation revision (crlrev)
//	acmed:{inv}:campcerts                         zset    "SEQ:SERIAL" of campaigns' pending members, by campaign and notAfter
//	acmed:{inv}:camp:ID, acmed:{inv}:camps        hash, zset  a campaign; campaign IDs by creation  Retention after its last member's notAfter
//	acmed:lease:NAME                              string  the holder of a lease  the lease's
//	acmed:{blockedkeys}                           hash    key hash (SHA-256 of SPKI, hex) -> JSON: serial and time of the keyCompromise revocation  none: a compromised key stays blocked
//	acmed:{crl:ISSUER}:number                     string  the CRL number last handed out  366 days after the last
//	acmed:{crl:ISSUER}:latest                     hash    the latest CRL: number, meta (JSON), der  366 days after the last
//	acmed:{alerts}:sent:EVENT:SERIAL              string  "1": the alert was queued  Retention after the certificate's notAfter
//	acmed:{alerts}:d:ID, acmed:{alerts}:due       hash, zset  a delivery (URL, alert, attempts, due); deliveries by due time  the same
//
// N runs from 0 to 15: a job goes to the stream picked by an FNV-1a hash
// of its order's or authorization's ID, so a Cluster spreads job traffic
// over its shards; every replica's Consume reclaims from all sixteen, and
// from the single stream acmed kept before, whose jobs an upgrade must
// not strand. A claim ID is "N/ENTRYID" ("ENTRYID" alone for that old
// stream), so Finish acknowledges in the right stream.
//
// The TTLs are storage.Retention's rule, the one the embedded store's
// sweep follows too (Retention is its Finished, OrderTTL its Grace).
// TTLs are relative to Config.Now (PEXPIRE, not PEXPIREAT), so a store on a
// test clock keeps keys as long as that clock says; a time already past
// still gets one minute, so a write can be read back.
//
// The inventory (inventory.go, inventory_lua.go) is one hash tag, so one
// script keeps all of a certificate's index entries in step: on a single
// server the script that stores the certificate (PutCertificate, and
// UpdateOrder with WithCertificate, whose round trips do not change); on
// a Cluster a second step in the {inv} slot once the record is written.
// What the store learns of a certificate after storing it (what replaced
// it, a campaign's window) is written to its inventory entry only and
// merged into every read of the record. Every query reads one index
// from a position, a bounded number of entries per script call, never
// the estate: see invQueryScript.
//
// Records are in storage/record's binary form (those an earlier acmed
// wrote as JSON still read, and are rewritten when next changed).
//
// Measured with MEMORY USAGE (Redis 7.0, TestMemoryPerIssuance, run with
// -v), one issuance for a new account with one DNS name, a P-256
// certificate and intermediate, leaves 3.3 KB: account 0.3, key index
// 0.1, order 0.3, authorization 0.5, valid-authorization entry 0.2, order
// list 0.2, certificate 1.6 (its PEM chain as is); its jobs are deleted
// when finished. used_memory grows by 5.5 KB per issuance over 500,
// counting Redis's own per-key overhead, the inventory (each of the 500
// accounts' index a key of its own) and, for the nonces' hour, the
// record of each spent nonce (about 180 B each, one per signed request;
// nonces handed out cost nothing). A renewal by an existing account
// leaves about 2.6 KB, and 1 KB of inventory. At 1,000,000 certificates
// (TestInventoryScale with ACMED_INVENTORY_SCALE=1000000: 10,000
// accounts, a 1.2 KB chain) Redis holds 2,646 B per certificate, of which
// the inventory's indexes are 965 B.
//
// # Round trips
//
// Pinned by TestRoundTrips for scoped IDs:
//
//	1  Account, Order, Authorization, Authorizations (MGET), Certificate,
//	   CreateOrder (one script, with the rate limits of storage.Limiting:
//	   they are decided in it before it writes), PutCertificate (with its
//	   inventory entry), Limit
//	   (several hash tags in one pipeline), NonceKey, ConsumeNonce,
//	   ConsumeNonceForAccount (nonce, account, the looked-up resource and
//	   blocked key in one pipeline), BlockKey, BlockedKey, Finish, Ping,
//	   and every Update* that starts From
//	   a copy the caller holds, whatever it queues, finishes or stores
//	   with it
//	2  every other Update* (GET, then the script; a certificate's with its
//	   inventory entry in the GET's pipeline, and the key BlockingKey
//	   blocks in its script: one more step on a Cluster), AccountByKey,
//	   ValidAuthorization, AccountOrders (ZRANGE, then EXISTS pipelined),
//	   CreateAccount (account, then key index: they are in different slots)
//	3  UpdateAccount that changes the key (GET, claim the new key, write
//	   and release the old)
//
// A whole issuance as acmebench makes it takes exactly 12, with the
// default rate limits (TestRoundTripsPerIssuance in integration): new-order's
// checks ride in CreateOrder's script, and the counts of a validation's
// outcome and of a certificate in the writes that record them. On a
// Cluster a limit in another slot than the order (a name set's) is a
// step of its own, and so is the certificate's inventory entry ({inv}):
// 14 there.
//
// With replicas to wait for (Config.MinReplicas) the counts stay: each
// write's WAIT, and each read's PUBLISH and WAIT, ride in its pipeline
// (a single read command becomes a pipeline of three). A script the
// server lacks, as after a failover, costs one more: NOSCRIPT, then EVAL.
//
// # Durability
//
// A write whose outcome a client is told about waits (WAIT, in the same
// pipeline: WAIT counts its connection's writes only) for every healthy
// replica of the master before the call returns, and reads wait the same
// way, so nothing a client is shown can be taken back by a failover; too
// few replicas within Config.WaitTimeout (1s) is storage.ErrUnavailable.
// Only job bookkeeping (finishing a job) does not wait. How many replicas
// is counted every second on clients of its own: SENTINEL REPLICAS (up,
// reachable, replicating), INFO replication of the master (standalone) or
// of each shard's master (Cluster), and the most seen in the last five
// counts is used: right after a promotion the old master still takes
// writes that only its last replica confirms, and that count must not
// drop until acmed has left it (go-redis drops the old master's
// connections at +switch-master). On a Cluster the write and its WAIT go
// to the node holding the key; reads (and ClaimCA, a MULTI) are not
// fenced there, as PUBLISH does not travel in a Cluster's replication
// stream. See durable.go, fence.go and replicas.go.
//
// # Consistency
//
// Each Update* is a compare-and-set (DESIGN.md decision 2): one script,
// applyScript, checks that the key still holds the bytes that were read
// and only then writes it, with the index entries, TTLs, job and
// certificate that go with it; a lost race rereads and calls fn again, up
// to 20 times, then fails with storage.ErrUnavailable. On a Cluster what
// lies in other slots (certificates, an account's key index, unscoped IDs) is
// written in further steps, in an order that leaves nothing a reader could
// trust half done, as each method's comment explains. The job stream is
// the one thing written before the resource: a job is queued first, then
// its resource moved to processing, so no resource is ever processing
// without a job; a job whose resource is not processing finishes doing
// nothing.
//
// Jobs are entries of streams with the consumer group "workers"
// (DESIGN.md decision 4). The script that moves a challenge or an order to
// processing appends its job and reads it at once as this replica's
// consumer (on a Cluster, a script of its own just before), so the job is
// born pending with the replica that runs it; the script that records the
// result acknowledges and deletes it. This, with reclaim, is the only
// recovery path: nothing re-queues a job from a client's read. A job still
// pending after Config.ReclaimAfter (its replica died, or overran) is
// taken over with XAUTOCLAIM by whichever replica's Consume scans next.
package redis
