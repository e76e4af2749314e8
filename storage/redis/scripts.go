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
// of that which shares one slot. It writes nothing unless every key to
// create is absent, and returns 0 then.
//
//	KEYS      n keys to create, m keys to extend, then the account's order
//	          list if ARGV[3] is "1", then index entries to set
//	ARGV[1]   n; ARGV[2] m; ARGV[3] "1" with a list; ARGV[4] TTL in ms for
//	          the keys to extend
//	then      value and TTL in ms for each key to create
//	then      with a list: order ID, its score (now in ms), the score below
//	          which entries are trimmed, the list's TTL in ms
//	then      authorization ID and TTL in ms for each index entry
//
// Scores only grow, so a page cursor (a score) never skips a later order
// created in the same millisecond.
var createScript = goredis.NewScript(luaExtend + `
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then return 0 end
end
local a = 5
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[a], 'PX', ARGV[a + 1])
  a = a + 2
end
for i = n + 1, n + m do extend(KEYS[i], tonumber(ARGV[4])) end
local k = n + m + 1
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
