package redis

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
