package redis

// luaInventory is the inventory's Lua, shared by applyScript (its inv
// operation, so a certificate is indexed in the script that stores it on
// a single server) and the inventory's own scripts. Every key it touches
// is one of the invKeys, all under the {inv} hash tag, declared by the
// caller: invkeys(i) names KEYS[i .. i+INV_KEYS-1].
//
// A certificate's entry is a field of the meta hash, serial -> its fields
// joined by tabs (the M_* positions; metaField in Go):
//
//	na nb ws        notAfter, notBefore, renewal window start, in Unix ms
//	acct prof       account ID, profile
//	rev             "r" and the reason code when revoked, else empty
//	rby rpl         replaced by, replaces (as the store found it)
//	ra rb cid       a campaign's window (Unix ns) and ID; "" without one
//	cseq            the sequence numbers of the campaigns that matched it
//	ids             its identifiers, "type:value" sorted, space-separated
//
// Sorted sets index it: exp (all, by notAfter), revoked (by notAfter),
// acct:ID and prof:NAME (by notAfter), names (lexical, reversed DNS
// names and IP addresses, each followed by NUL and the serial), win
// (unrevoked and unreplaced, by the start of the renewal window, or
// notAfter if that is earlier), due (the members of win whose window
// started by the promotion position, by notAfter), campcerts (campaign
// members, see campscore). latest maps an account's identifier set to its
// latest serial, for replacement; stats holds the promotion position (ps,
// pm), the longest lifetime seen (life), the campaign sequence and the
// revocation revision (crlrev).
//
// Replacement and campaign windows live here, not in the certificate
// record (acmed:cert:SERIAL, another slot on a Cluster): reads merge
// them in (overlay).
const luaInventory = `
local INV_KEYS, INV_ARGS = 11, 13
local INV = {'meta', 'exp', 'revoked', 'names', 'win', 'due', 'latest', 'stats', 'campcerts', 'acct', 'prof'}
local M_NA, M_NB, M_WS, M_ACCT, M_PROF, M_REV, M_RBY, M_RPL, M_RA, M_RB, M_CID, M_CSEQ, M_IDS = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13
-- A campaign member's score: its campaign's sequence number times
-- CAMP_SPAN plus its notAfter in seconds since 2000, so one campaign's
-- members are one score range, ordered by notAfter.
local CAMP_SPAN, EPOCH2000 = 4294967296, 946684800
-- TOP sorts after every member: a position "after everything at a score".
local TOP = '\255'

local function invkeys(i)
  local k = {}
  for j, n in ipairs(INV) do k[n] = KEYS[i + j - 1] end
  return k
end

local function fmt(x) return string.format('%.0f', x) end

-- blt is a < b byte by byte, as sorted sets and Go order members; Lua's
-- own string order follows the server's locale.
local function blt(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local function split(s, sep)
  local t, i = {}, 1
  while true do
    local j = string.find(s, sep, i, true)
    if not j then
      t[#t + 1] = string.sub(s, i)
      return t
    end
    t[#t + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end

local function parsemeta(s)
  local m = split(s, '\t')
  m.na, m.nb, m.ws = tonumber(m[M_NA]), tonumber(m[M_NB]), tonumber(m[M_WS])
  return m
end

local function getmeta(k, serial)
  local s = redis.call('HGET', k.meta, serial)
  if not s then return nil end
  return parsemeta(s)
end

local function putmeta(k, serial, m)
  redis.call('HSET', k.meta, serial, table.concat(m, '\t', 1, M_IDS))
end

-- adopt gives key, if it has no TTL, the TTL of from.
local function adopt(key, from)
  if redis.call('PTTL', key) == -1 then
    local t = redis.call('PTTL', from)
    if t > 0 then redis.call('PEXPIRE', key, t) end
  end
end

local function setkey(acct, ids) return string.sub(redis.sha1hex(acct .. '\n' .. ids), 1, 24) end

local function idlist(ids)
  if ids == '' then return {} end
  local out = {}
  for _, id in ipairs(split(ids, ' ')) do
    local c = string.find(id, ':', 1, true) or 0
    out[#out + 1] = {string.sub(id, 1, c - 1), string.sub(id, c + 1)}
  end
  return out
end

local function namemembers(ids, serial)
  local out = {}
  for _, id in ipairs(idlist(ids)) do
    if id[1] == 'ip' then
      out[#out + 1] = '\1' .. id[2] .. '\0' .. serial
    else
      out[#out + 1] = string.reverse(id[2]) .. '\0' .. serial
    end
  end
  return out
end

local function sanmatch(ids, suffix)
  local dot = '.' .. suffix
  for _, id in ipairs(idlist(ids)) do
    if id[2] == suffix then return true end
    if id[1] ~= 'ip' and #id[2] >= #dot and string.sub(id[2], -#dot) == dot then return true end
  end
  return false
end

local function campscore(seq, na)
  local sec = math.floor(na / 1000) - EPOCH2000
  if sec < 0 then sec = 0 elseif sec >= CAMP_SPAN then sec = CAMP_SPAN - 1 end
  return tonumber(seq) * CAMP_SPAN + sec
end

local function campseqs(m)
  if m[M_CSEQ] == '' then return {} end
  return split(m[M_CSEQ], ',')
end

local function campoff(k, serial, m)
  for _, q in ipairs(campseqs(m)) do redis.call('ZREM', k.campcerts, q .. ':' .. serial) end
end

local function campon(k, serial, m)
  for _, q in ipairs(campseqs(m)) do
    redis.call('ZADD', k.campcerts, fmt(campscore(q, m.na)), q .. ':' .. serial)
  end
end

-- rankafter is the rank in key of the first member after the position
-- (score, member): member TOP is after all at score, '' before all.
local function rankafter(key, score, member)
  if member ~= TOP and member ~= '' then
    local sc = redis.call('ZSCORE', key, member)
    if sc and tonumber(sc) == score then return redis.call('ZRANK', key, member) + 1 end
  end
  local r = redis.call('ZCOUNT', key, '-inf', '(' .. fmt(score))
  if member == TOP then return r + redis.call('ZCOUNT', key, fmt(score), fmt(score)) end
  if member == '' then return r end
  for _, x in ipairs(redis.call('ZRANGEBYSCORE', key, fmt(score), fmt(score))) do
    if not blt(member, x) then r = r + 1 end
  end
  return r
end

-- The promotion position: due holds every member of win at or before it.
local function ppos(k)
  local p = redis.call('HMGET', k.stats, 'ps', 'pm')
  if not p[1] then return nil, nil end
  return tonumber(p[1]), p[2]
end

-- setppos is only called with win present, whose TTL stats takes if it
-- has none (it expired before win, whose members it positions).
local function setppos(k, score, member)
  redis.call('HSET', k.stats, 'ps', fmt(score), 'pm', member)
  adopt(k.stats, k.win)
end

local function winscore(m) return math.min(m.ws, m.na) end

-- towin (re)enters an unrevoked, unreplaced certificate into win, and
-- into due if its window starts by the promotion position.
local function towin(k, serial, m)
  local s = winscore(m)
  redis.call('ZADD', k.win, fmt(s), serial)
  local ps, pm = ppos(k)
  if ps and (s < ps or (s == ps and not blt(pm, serial))) then
    redis.call('ZADD', k.due, m[M_NA], serial)
    adopt(k.due, k.win)
  else
    redis.call('ZREM', k.due, serial)
  end
end

local function offwin(k, serial)
  redis.call('ZREM', k.win, serial)
  redis.call('ZREM', k.due, serial)
end

-- promote moves into due the members of win after the promotion position
-- whose window starts by target, at most budget of them; true when done.
local function promote(k, target, budget)
  if redis.call('EXISTS', k.win) == 0 then return true end
  local ps, pm = ppos(k)
  local r = 0
  if ps then
    if ps > target or (ps == target and pm == TOP) then return true end
    r = rankafter(k.win, ps, pm)
  end
  local items = redis.call('ZRANGE', k.win, r, r + budget - 1, 'WITHSCORES')
  for j = 1, #items, 2 do
    local serial, s = items[j], tonumber(items[j + 1])
    if s > target then
      setppos(k, target, TOP)
      return true
    end
    local na = redis.call('ZSCORE', k.exp, serial)
    if na then
      redis.call('ZADD', k.due, na, serial)
      adopt(k.due, k.win)
    end
    ps, pm = s, serial
  end
  if #items < 2 * budget then
    setppos(k, target, TOP)
    return true
  end
  setppos(k, ps, pm)
  return false
end

-- drop removes a certificate from every index; with unreplace, the one it
-- replaced is unreplaced again (an issuance undone).
local function drop(k, serial, unreplace)
  local m = getmeta(k, serial)
  redis.call('ZREM', k.exp, serial)
  redis.call('ZREM', k.revoked, serial)
  offwin(k, serial)
  redis.call('ZREM', k.acct, serial)
  redis.call('ZREM', k.prof, serial)
  if not m then return end
  for _, n in ipairs(namemembers(m[M_IDS], serial)) do redis.call('ZREM', k.names, n) end
  campoff(k, serial, m)
  local h = setkey(m[M_ACCT], m[M_IDS])
  local back = nil
  if unreplace and m[M_RPL] ~= '' then
    local o = getmeta(k, m[M_RPL])
    if o and o[M_RBY] == serial then
      o[M_RBY] = ''
      putmeta(k, m[M_RPL], o)
      if o[M_REV] == '' then towin(k, m[M_RPL], o) end
      campon(k, m[M_RPL], o)
      if setkey(o[M_ACCT], o[M_IDS]) == h then back = m[M_RPL] end
    end
  end
  if redis.call('HGET', k.latest, h) == serial then
    if back then redis.call('HSET', k.latest, h, back) else redis.call('HDEL', k.latest, h) end
  end
  redis.call('HDEL', k.meta, serial)
end

-- trim drops up to max certificates whose records are gone by Retention
-- (notAfter at or before cutoff); true when none are left.
local function trim(k, cutoff, max)
  local gone = redis.call('ZRANGEBYSCORE', k.exp, '-inf', cutoff, 'LIMIT', 0, max)
  for _, serial in ipairs(gone) do drop(k, serial, false) end
  redis.call('ZREMRANGEBYSCORE', k.acct, '-inf', cutoff)
  redis.call('ZREMRANGEBYSCORE', k.prof, '-inf', cutoff)
  return #gone < max
end

-- crlrev bumps the revocation revision CRL publishers watch
-- (storage.CRLs.RevocationRevision).
local function crlrev(k, ttl)
  redis.call('HINCRBY', k.stats, 'crlrev', 1)
  extend(k.stats, ttl)
end

-- inv_op is applyScript's inv operation; ARGV from i (invArgs in Go):
-- mode (add or update), serial, na, nb, ws, acct, prof, rev, rpl, ids,
-- ttl (the record's, ms), cutoff, now (ms). add indexes a new certificate
-- and records what it replaces: rpl if given, else the account's latest
-- for the same identifiers; an entry already there is a retry, left as it
-- is. update takes a revocation (or its undoing); a certificate not in
-- the inventory (stored by an older acmed) is added, without replacement.
local function inv_op(k, i)
  local mode, serial, na, nb, ws = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local acct, prof, rev, rpl, ids = ARGV[i + 5], ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], ARGV[i + 9]
  local ttl, cutoff, now = tonumber(ARGV[i + 10]), ARGV[i + 11], ARGV[i + 12]
  trim(k, cutoff, 16)
  local m = getmeta(k, serial)
  if m then
    if mode == 'add' or m[M_REV] == rev then return end
    m[M_REV] = rev
    putmeta(k, serial, m)
    crlrev(k, ttl)
    if rev ~= '' then
      redis.call('ZADD', k.revoked, m[M_NA], serial)
      extend(k.revoked, ttl)
      offwin(k, serial)
    else
      redis.call('ZREM', k.revoked, serial)
      if m[M_RBY] == '' then towin(k, serial, m) end
    end
    return
  end
  local replaced = ''
  if mode == 'add' and ids ~= '' then
    local old = rpl
    if old == '' then old = redis.call('HGET', k.latest, setkey(acct, ids)) or '' end
    local o = old ~= '' and old ~= serial and getmeta(k, old)
    if o and o[M_RBY] == '' then
      o[M_RBY] = serial
      putmeta(k, old, o)
      offwin(k, old)
      campoff(k, old, o)
      replaced = old
    end
  end
  if rpl == '' then rpl = replaced end
  m = parsemeta(table.concat({na, nb, ws, acct, prof, rev, '', rpl, '', '', '', '', ids}, '\t'))
  putmeta(k, serial, m)
  if ids ~= '' then redis.call('HSET', k.latest, setkey(acct, ids), serial) end
  redis.call('ZADD', k.exp, na, serial)
  if acct ~= '' then
    redis.call('ZADD', k.acct, na, serial)
    extend(k.acct, ttl)
  end
  if prof ~= '' then
    redis.call('ZADD', k.prof, na, serial)
    extend(k.prof, ttl)
  end
  for _, n in ipairs(namemembers(ids, serial)) do redis.call('ZADD', k.names, 0, n) end
  if redis.call('HEXISTS', k.stats, 'ps') == 0 and redis.call('ZCARD', k.win) == 0 then
    -- Nothing to promote yet: due starts complete at now.
    redis.call('HSET', k.stats, 'ps', now, 'pm', TOP)
  end
  local life = m.na - m.nb
  if life > tonumber(redis.call('HGET', k.stats, 'life') or '0') then
    redis.call('HSET', k.stats, 'life', fmt(life))
  end
  if rev ~= '' then
    redis.call('ZADD', k.revoked, na, serial)
    extend(k.revoked, ttl)
    if mode == 'update' then crlrev(k, ttl) end
  else
    towin(k, serial, m)
  end
  for _, key in ipairs({k.meta, k.exp, k.names, k.win, k.due, k.latest, k.stats}) do extend(key, ttl) end
end
`

// invKeyCount and invArgCount are INV_KEYS and INV_ARGS.
const (
	invKeyCount = 11
	invArgCount = 13
)
