package redis

import goredis "github.com/redis/go-redis/v9"

// Results of the compare-and-set scripts.
const (
	casGone    = -1 // the key no longer exists (expired)
	casChanged = 0  // the key holds other bytes than were read
	casWritten = 1
)

// luaExtend lengthens a key's TTL to at least ttl ms and never shortens
// it: an authorization must outlive every order that lists it. A key
// without a TTL gets one (a sorted set just created); a missing key stays
// missing.
const luaExtend = `
local function extend(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur == -1 or (cur >= 0 and cur < ttl) then
    redis.call('PEXPIRE', key, ttl)
  end
end
`

// luaReindex applies one change to a valid-authorization index entry:
// "set" points it at id, "drop" removes it only if it still points at id,
// so an authorization leaving valid does not unlist a later one.
const luaReindex = `
local function reindex(key, op, id, ttl)
  if op == 'set' then
    redis.call('SET', key, id, 'PX', ttl)
  elseif op == 'drop' and redis.call('GET', key) == id then
    redis.call('DEL', key)
  end
end
`

// createScript creates an order with its new authorizations, or any part
// of that which shares one slot, after deciding the rate limits in that
// slot (storage.Limiting). It writes and spends nothing unless every
// limit allows and every key to create is absent: it returns {i, µs until
// allowed} when the i-th limit (1-based) refuses, 0 when a key exists, 1
// when it wrote.
//
//	KEYS      l limit keys, n keys to create, m keys to extend, then the
//	          account's order list if ARGV[3] is "1", then index entries
//	ARGV[1]   n; ARGV[2] m; ARGV[3] "1" with a list; ARGV[4] TTL in ms for
//	          the keys to extend; ARGV[5] l
//	then      with limits: what luaGCRA's decide reads (now, then count,
//	          period and cost for each limit key)
//	then      value and TTL in ms for each key to create
//	then      with a list: order ID, its score (now in ms), the score below
//	          which entries are trimmed, the list's TTL in ms
//	then      authorization ID and TTL in ms for each index entry
//
// Scores only grow, so a page cursor (a score) never skips a later order
// created in the same millisecond.
var createScript = goredis.NewScript(luaExtend + luaGCRA + `
local n, m, l = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[5])
local a, nxt = 6, nil
if l > 0 then
  local i, r = decide(1, l, a)
  if i > 0 then return {i, r} end
  nxt = r
  a = a + 1 + 3 * l
end
for i = l + 1, l + n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
if l > 0 then commit(1, nxt, tonumber(ARGV[6])) end
for i = l + 1, l + n do
  redis.call('SET', KEYS[i], ARGV[a], 'PX', ARGV[a + 1])
  a = a + 2
end
for i = l + n + 1, l + n + m do extend(KEYS[i], tonumber(ARGV[4])) end
local k = l + n + m + 1
if ARGV[3] == '1' then
  local list = KEYS[k]
  k = k + 1
  local score = tonumber(ARGV[a + 1])
  local last = redis.call('ZRANGE', list, -1, -1, 'WITHSCORES')
  if last[2] and tonumber(last[2]) >= score then score = tonumber(last[2]) + 1 end
  redis.call('ZADD', list, score, ARGV[a])
  redis.call('ZREMRANGEBYSCORE', list, '-inf', '(' .. ARGV[a + 2])
  extend(list, tonumber(ARGV[a + 3]))
  a = a + 4
end
for i = k, #KEYS do
  redis.call('SET', KEYS[i], ARGV[a], 'PX', ARGV[a + 1])
  a = a + 2
end
return 1
`)

// delIfScript deletes KEYS[1] if it holds ARGV[1]: it undoes a write of
// ours without touching one that replaced it.
var delIfScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// claimScript points an account key index entry (KEYS[1]) at account
// ARGV[1] unless another account holds it: 1 if it set it, 2 if the entry
// already named the account (a retry, or an update cut short), 0 if taken.
var claimScript = goredis.NewScript(`
local owner = redis.call('GET', KEYS[1])
if not owner then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
if owner == ARGV[1] then return 2 end
return 0
`)
