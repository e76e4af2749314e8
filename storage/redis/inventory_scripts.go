package redis

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
