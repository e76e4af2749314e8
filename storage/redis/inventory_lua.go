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
//	rev             "r" when revoked
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
// pm), the longest lifetime seen (life) and the campaign sequence.
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
    if rev == 'r' then
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
  if rev == 'r' then
    redis.call('ZADD', k.revoked, na, serial)
    extend(k.revoked, ttl)
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

// invQueryScript finds up to need certificates matching a filter, in the
// inventory's order (notAfter, then serial), after a position. It first
// trims what Retention has removed and, for a not-renewed query, promotes
// what has entered its window; each is bounded by budget, and an
// unfinished one returns {'more'} for the caller to call again.
//
// It reads one index, the driver: the sorted set by notAfter with the
// fewest entries in the filter's notAfter range (all, revoked, due, the
// account's, the profile's), walked from the position, at most budget
// entries per call; or, when fewer, the serials asked for or the names
// matching a SAN suffix (if at most ARGV[15]), all read and sorted. Every
// entry read is judged against the whole filter.
//
//	KEYS  invKeys(account, profile)
//	ARGV  now, cutoff, need, budget, position notAfter ("" for the
//	      start) and serial, status, notAfter bound of ExpiringWithin
//	      (""), "1" for NotRenewed, SAN suffix, account, profile,
//	      IssuedBefore (""), "1" for a campaign's match (unexpired, not
//	      revoked, not replaced), the most names to read, then serials
//
// It returns {state, notAfter, serial, (serial, entry)...}: state "full"
// when it found need, "done" when the index is exhausted, "more" when the
// budget ran out at the position (notAfter, serial) it returns. Times are
// Unix ms.
var invQueryScript = newInvScript(`
local k = invkeys(1)
local now, cutoff = tonumber(ARGV[1]), tonumber(ARGV[2])
local need, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
if not trim(k, ARGV[2], budget) then return {'more'} end
local f = {status = ARGV[7], nr = ARGV[9] == '1', suffix = ARGV[10], acct = ARGV[11], prof = ARGV[12], camp = ARGV[14] == '1'}
if ARGV[8] ~= '' then f.within = tonumber(ARGV[8]) end
if ARGV[13] ~= '' then f.ib = tonumber(ARGV[13]) end
if ARGV[5] ~= '' then f.cna, f.cs = tonumber(ARGV[5]), ARGV[6] end
if #ARGV >= 16 then
  f.serials = {}
  for j = 16, #ARGV do f.serials[ARGV[j]] = true end
end
if f.nr and not promote(k, now, budget) then return {'more'} end

local function match(serial, m)
  if f.cna and not (m.na > f.cna or (m.na == f.cna and blt(f.cs, serial))) then return false end
  local live, rev = m.na > now, m[M_REV] ~= ''
  if f.status == 'valid' and (rev or not live) then return false end
  if f.status == 'revoked' and not rev then return false end
  if f.status == 'expired' and (rev or live) then return false end
  if f.within and (not live or m.na > f.within) then return false end
  if (f.nr or f.camp) and (not live or rev or m[M_RBY] ~= '') then return false end
  if f.nr and m.ws > now then return false end
  if f.acct ~= '' and m[M_ACCT] ~= f.acct then return false end
  if f.prof ~= '' and m[M_PROF] ~= f.prof then return false end
  if f.ib and not (m.nb < f.ib) then return false end
  if f.serials and not f.serials[serial] then return false end
  if f.suffix ~= '' and not sanmatch(m[M_IDS], f.suffix) then return false end
  return true
end

-- The notAfter range: (lo, hi].
local lo, hi = cutoff, math.huge
if f.status == 'valid' or f.within or f.nr or f.camp then lo = math.max(lo, now) end
if f.status == 'expired' then hi = now end
if f.within then hi = math.min(hi, f.within) end
if f.ib then hi = math.min(hi, f.ib + tonumber(redis.call('HGET', k.stats, 'life') or '0')) end
if lo >= hi then return {'done', '', ''} end
local hiarg = '+inf'
if hi < math.huge then hiarg = fmt(hi) end

local best = k.exp
local bestn = redis.call('ZCOUNT', best, '(' .. fmt(lo), hiarg)
local function consider(key)
  local n = redis.call('ZCOUNT', key, '(' .. fmt(lo), hiarg)
  if n < bestn then best, bestn = key, n end
end
if f.status == 'revoked' then consider(k.revoked) end
if f.nr then consider(k.due) end
if f.acct ~= '' then consider(k.acct) end
if f.prof ~= '' then consider(k.prof) end

local list = nil
if f.serials and #ARGV - 15 < bestn then
  list = {}
  for j = 16, #ARGV do list[#list + 1] = ARGV[j] end
  bestn = #list
end
if f.suffix ~= '' then
  local rs = string.reverse(f.suffix)
  local ranges = {
    {'[' .. rs .. '\0', '(' .. rs .. '\1'},
    {'[' .. rs .. '.', '(' .. rs .. '/'},
    {'[\1' .. f.suffix .. '\0', '(\1' .. f.suffix .. '\1'},
  }
  local n = 0
  for _, r in ipairs(ranges) do n = n + redis.call('ZLEXCOUNT', k.names, r[1], r[2]) end
  if n < bestn and n <= tonumber(ARGV[15]) then
    list = {}
    for _, r in ipairs(ranges) do
      for _, x in ipairs(redis.call('ZRANGEBYLEX', k.names, r[1], r[2])) do
        list[#list + 1] = string.sub(x, string.find(x, '\0', 1, true) + 1)
      end
    end
  end
end

if list then
  local seen, found = {}, {}
  for _, serial in ipairs(list) do
    if not seen[serial] then
      seen[serial] = true
      local s = redis.call('HGET', k.meta, serial)
      if s then
        local m = parsemeta(s)
        if m.na > lo and m.na <= hi and match(serial, m) then found[#found + 1] = {m.na, serial, s} end
      end
    end
  end
  table.sort(found, function(a, b) return a[1] < b[1] or (a[1] == b[1] and blt(a[2], b[2])) end)
  local out = {'done', '', ''}
  if #found > need then out[1] = 'full' end
  for j = 1, math.min(need, #found) do
    out[#out + 1] = found[j][2]
    out[#out + 1] = found[j][3]
  end
  return out
end

local r = rankafter(best, lo, TOP)
if f.cna then r = math.max(r, rankafter(best, f.cna, f.cs)) end
local out = {'done', '', ''}
local found, examined, dangling = 0, 0, {}
local batch = math.min(math.max(need, 16), 256)
local stop = false
while not stop do
  local items = redis.call('ZRANGE', best, r, r + batch - 1, 'WITHSCORES')
  if #items == 0 then break end
  for j = 1, #items, 2 do
    local serial = items[j]
    if tonumber(items[j + 1]) > hi then
      stop = true
      break
    end
    examined = examined + 1
    out[2], out[3] = items[j + 1], serial
    local s = redis.call('HGET', k.meta, serial)
    if not s then
      dangling[#dangling + 1] = serial
    elseif match(serial, parsemeta(s)) then
      out[#out + 1] = serial
      out[#out + 1] = s
      found = found + 1
      if found >= need then
        out[1] = 'full'
        stop = true
        break
      end
    end
    if examined >= budget then
      out[1] = 'more'
      stop = true
      break
    end
  end
  r = r + #items / 2
end
for _, serial in ipairs(dangling) do drop(k, serial, false) end
return out
`)

// invCountScript counts the estate at now (CertCounts), after trimming
// and promoting as invQueryScript does (returning {'more'} until done):
// {'done', valid, revoked, expired, not renewed, expiring...} for each
// notAfter bound in ARGV from 4.
//
//	KEYS  invKeys("", "")
//	ARGV  now, cutoff, budget, then notAfter bounds (Unix ms)
//
// Not renewed is exact with any clock: due holds win's members up to the
// promotion position P >= now, so it is due's members unexpired at now
// less win's whose window starts after now, by P.
var invCountScript = newInvScript(`
local k = invkeys(1)
local now, cutoff, budget = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if not trim(k, ARGV[2], budget) then return {'more'} end
local target = now
local ps = ppos(k)
if ps and ps > target then target = ps end
if not promote(k, target, budget) then return {'more'} end
local function zc(key, a, b) return redis.call('ZCOUNT', key, a, b) end
local lo = '(' .. fmt(math.max(now, cutoff))
local c = '(' .. fmt(cutoff)
local out = {'done', 0, 0, 0, 0}
out[2] = zc(k.exp, lo, '+inf') - zc(k.revoked, lo, '+inf')
out[3] = zc(k.revoked, c, '+inf')
if now > cutoff then out[4] = zc(k.exp, c, fmt(now)) - zc(k.revoked, c, fmt(now)) end
out[5] = zc(k.due, '(' .. fmt(now), '+inf') - zc(k.win, '(' .. fmt(now), fmt(target))
for j = 4, #ARGV do
  local e, n = tonumber(ARGV[j]), 0
  if e > math.max(now, cutoff) then n = zc(k.exp, lo, fmt(e)) - zc(k.revoked, lo, fmt(e)) end
  out[#out + 1] = n
end
return out
`)

// invDropScript drops certificates from the inventory: those whose record
// is gone, found by a query, or one whose issuance is undone (ARGV[1]
// "1": what it replaced is unreplaced again).
//
//	KEYS  invKeys(account, profile) of the certificates, if known
//	ARGV  "1" to unreplace, then serials
var invDropScript = newInvScript(`
local k = invkeys(1)
for j = 2, #ARGV do drop(k, ARGV[j], ARGV[1] == '1') end
return 1
`)

// campCreateScript records a campaign, if its ID is new, with a fresh
// sequence number, which it returns (0 if the ID is taken).
//
//	KEYS  campaign, campaign list, stats
//	ARGV  ID, created (ns), created (ms), by, filter, explanation URL,
//	      window start and end (ns), TTL (ms)
var campCreateScript = newInvScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local seq = redis.call('HINCRBY', KEYS[3], 'campseq', 1)
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created', ARGV[2], 'by', ARGV[4], 'filter', ARGV[5],
  'url', ARGV[6], 'ws', ARGV[7], 'we', ARGV[8], 'seq', seq, 'matched', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[9])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
extend(KEYS[2], tonumber(ARGV[9]))
extend(KEYS[3], tonumber(ARGV[9]))
return seq
`)

// campApplyScript moves the window of each certificate named that is
// still unexpired, unrevoked and unreplaced to the campaign's, enters it
// in the campaign, and adds the count to the campaign's matched, which
// it returns.
//
//	KEYS  invKeys("", ""), campaign
//	ARGV  ID, sequence, now (ms), window start and end (ns), window
//	      start (ms), TTL (ms), serials
var campApplyScript = newInvScript(`
local k = invkeys(1)
local id, seq, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local n = 0
for j = 8, #ARGV do
  local serial = ARGV[j]
  local m = getmeta(k, serial)
  if m and m[M_REV] == '' and m[M_RBY] == '' and m.na > now then
    local seqs, has = campseqs(m), false
    for _, q in ipairs(seqs) do if q == seq then has = true end end
    if not has then
      seqs[#seqs + 1] = seq
      m[M_RA], m[M_RB], m[M_CID], m[M_WS], m[M_CSEQ] = ARGV[4], ARGV[5], id, ARGV[6], table.concat(seqs, ',')
      m.ws = tonumber(ARGV[6])
      putmeta(k, serial, m)
      towin(k, serial, m)
      redis.call('ZADD', k.campcerts, fmt(campscore(seq, m.na)), seq .. ':' .. serial)
      n = n + 1
    end
  end
end
if n > 0 then
  redis.call('HINCRBY', KEYS[INV_KEYS + 1], 'matched', n)
  extend(k.campcerts, tonumber(ARGV[7]))
end
return n
`)

// campPendingScript counts a campaign's members not replaced and
// unexpired at now, and returns up to limit of them after a position:
// {count, next score, next member, serials...}, next "" on the last page;
// {-1} for an unknown campaign.
//
//	KEYS  invKeys("", ""), campaign
//	ARGV  now (ms), limit, position score ("" for the start) and member
var campPendingScript = newInvScript(`
local k = invkeys(1)
local seq = redis.call('HGET', KEYS[INV_KEYS + 1], 'seq')
if not seq then return {-1} end
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local edge = campscore(seq, now)
local hi = tonumber(seq) * CAMP_SPAN + CAMP_SPAN - 1
local function live(member)
  local serial = string.sub(member, #seq + 2)
  local m = getmeta(k, serial)
  return m and m.na > now and m[M_RBY] == '', serial
end
-- Members past now's second are unexpired: replaced and dropped ones
-- leave campcerts. Those in its second are judged one by one.
local out = {redis.call('ZCOUNT', k.campcerts, '(' .. fmt(edge), fmt(hi)), '', ''}
for _, x in ipairs(redis.call('ZRANGEBYSCORE', k.campcerts, fmt(edge), fmt(edge))) do
  if live(x) then out[1] = out[1] + 1 end
end
local r = rankafter(k.campcerts, edge, '')
if ARGV[3] ~= '' then r = math.max(r, rankafter(k.campcerts, tonumber(ARGV[3]), ARGV[4])) end
local got, more, stop = 0, false, false
while not stop do
  local items = redis.call('ZRANGE', k.campcerts, r, r + limit, 'WITHSCORES')
  if #items == 0 then break end
  for j = 1, #items, 2 do
    if tonumber(items[j + 1]) > hi then
      stop = true
      break
    end
    local ok, serial = live(items[j])
    if ok then
      if got == limit then
        more, stop = true, true
        break
      end
      got = got + 1
      out[#out + 1] = serial
      if got == limit then out[2], out[3] = items[j + 1], items[j] end
    end
  end
  r = r + #items / 2
end
if not more then out[2], out[3] = '', '' end
return out
`)
