package redis

import (
	"context"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

// applyScript runs a plan: a list of operations, one key each, taken as a
// whole or not at all. Guards (cmp, new) are all checked before anything
// is written, so a failed guard leaves every key as it was.
//
//	KEYS      one per operation, in order (inv takes invKeyCount)
//	ARGV      per operation its name, then its arguments:
//	  cmp  expected           guard: the key holds these bytes (-1 if it is
//	                          missing, 0 if it holds others)
//	  new                     guard: the key does not exist (2 if it does)
//	  set  value ttl          ttl in ms; "0" for none, "-1" to keep the TTL
//	  ext  ttl                lengthen the TTL to at least ttl ms
//	  idx  op id ttl          reindex (see luaReindex)
//	  enq  group consumer job maxlen
//	                          append job to the stream and read it at once as
//	                          consumer: the job is born claimed (pending)
//	  ack  group id           acknowledge and delete a stream entry
//	  lim  count period cost now
//	                          storage.GCRASpend on a rate limit key (µs)
//	  inv  see invArgs        put a certificate into the inventory, or
//	                          update its entry (luaInventory)
//	  hsx  field value        HSETNX: set a hash field unless it is set
//
// It returns {1, claimed entry ID or ""} when it wrote, else the number of
// the failed guard.
var applyScript = goredis.NewScript(luaExtend + luaReindex + luaGCRA + luaInventory + `
local arity = {cmp = 1, new = 0, set = 2, ext = 1, idx = 3, enq = 4, ack = 2, lim = 4, inv = INV_ARGS, hsx = 2}
local keyn = {inv = INV_KEYS}
local ops, a, k = {}, 1, 1
while a <= #ARGV do
  local name = ARGV[a]
  local n = arity[name]
  if not n then return redis.error_reply('apply: unknown operation ' .. name) end
  ops[#ops + 1] = {name, KEYS[k], a + 1, k}
  a = a + 1 + n
  k = k + (keyn[name] or 1)
end
for _, op in ipairs(ops) do
  local name, key, i = op[1], op[2], op[3]
  if name == 'cmp' then
    local cur = redis.call('GET', key)
    if not cur then return -1 end
    if cur ~= ARGV[i] then return 0 end
  elseif name == 'new' and redis.call('EXISTS', key) == 1 then
    return 2
  end
end

-- claim reads the stream as consumer until it has read id, the entry just
-- added. Entries queued unclaimed before it (by an older acmed) are read
-- too and stay pending with this consumer, to be reclaimed like any other.
local function claim(stream, group, consumer, id)
  local ok, res = pcall(redis.call, 'XREADGROUP', 'GROUP', group, consumer, 'COUNT', 100, 'STREAMS', stream, '>')
  if not ok then
    redis.call('XGROUP', 'CREATE', stream, group, '0')
    res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 100, 'STREAMS', stream, '>')
  end
  while res do
    local entries = res[1][2]
    if entries[#entries][1] == id then return id end
    res = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', 100, 'STREAMS', stream, '>')
  end
  return redis.error_reply('apply: queued job ' .. id .. ' was not delivered')
end

local claimed = ''
for _, op in ipairs(ops) do
  local name, key, i = op[1], op[2], op[3]
  if name == 'set' then
    if ARGV[i + 1] == '0' then
      redis.call('SET', key, ARGV[i])
    elseif ARGV[i + 1] == '-1' then
      redis.call('SET', key, ARGV[i], 'KEEPTTL')
    else
      redis.call('SET', key, ARGV[i], 'PX', ARGV[i + 1])
    end
  elseif name == 'ext' then
    extend(key, tonumber(ARGV[i]))
  elseif name == 'idx' then
    reindex(key, ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]))
  elseif name == 'enq' then
    local id = redis.call('XADD', key, 'MAXLEN', '~', ARGV[i + 3], '*', 'job', ARGV[i + 2])
    claimed = claim(key, ARGV[i], ARGV[i + 1], id)
    if type(claimed) == 'table' then return claimed end
  elseif name == 'ack' then
    redis.call('XACK', key, ARGV[i], ARGV[i + 1])
    redis.call('XDEL', key, ARGV[i + 1])
  elseif name == 'lim' then
    local now = tonumber(ARGV[i + 3])
    local tat = tonumber(redis.call('GET', key) or '0')
    local n = gcraSpend(tat, now, tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]))
    if n > now then
      redis.call('SET', key, string.format('%.0f', n), 'PX', math.ceil((n - now) / 1000))
    else
      redis.call('DEL', key)
    end
  elseif name == 'inv' then
    inv_op(invkeys(op[4]), i)
  elseif name == 'hsx' then
    redis.call('HSETNX', key, ARGV[i], ARGV[i + 1])
  end
end
return {1, claimed}
`)

// plan is a list of operations for applyScript.
type plan struct{ ops []planOp }

type planOp struct {
	name, key string
	more      []string // further keys, in key's slot (inv)
	args      []any
}

func (p *plan) add(op, key string, args ...any) {
	p.ops = append(p.ops, planOp{name: op, key: key, args: args})
}

// script lays p out as applyScript reads it.
func (p plan) script() (keys []string, args []any) {
	for _, op := range p.ops {
		keys = append(append(keys, op.key), op.more...)
		args = append(append(args, op.name), op.args...)
	}
	return keys, args
}

// Guards and writes a plan's callers use.
func (p *plan) compare(key string, raw []byte)      { p.add("cmp", key, raw) }
func (p *plan) absent(key string)                   { p.add("new", key) }
func (p *plan) set(key string, v []byte, ttl int64) { p.add("set", key, v, ttl) }
func (p *plan) extend(key string, ttl int64)        { p.add("ext", key, ttl) }
func (p *plan) reindex(key, op, id string, ttl int64) {
	p.add("idx", key, op, id, ttl)
}
func (p *plan) enqueue(stream, consumer string, job []byte) {
	p.add("enq", stream, jobsGroup, consumer, job, maxJobs/jobStreams)
}
func (p *plan) ack(stream, entry string) { p.add("ack", stream, jobsGroup, entry) }
func (p *plan) spend(c storage.LimitCheck, now time.Time) {
	p.add("lim", limitKey(c), c.Limit.Count, c.Limit.Period.Microseconds(), c.Cost, now.UnixMicro())
}

// bookkeeping reports whether p only finishes jobs: no client is told
// about that, and a finish a failover drops only runs the job again, so
// it need not wait for replicas (Config.MinReplicas).
func (p plan) bookkeeping() bool {
	for _, op := range p.ops {
		if op.name != "ack" {
			return false
		}
	}
	return true
}

// keepTTL is the ttl argument of set that keeps the key's TTL.
const keepTTL = -1

// applyResult is what running a plan did: res is casWritten, or the code
// of the guard that failed (casGone, casChanged, casTaken).
type applyResult struct {
	res     int64
	claimed string
}

const casTaken = 2

// apply runs p in one round trip. On a Cluster every key of p must share
// a slot; split is how callers divide a plan that may not.
func (s *Store) apply(ctx context.Context, what string, p plan) (applyResult, error) {
	if len(p.ops) == 0 {
		return applyResult{res: casWritten}, nil
	}
	keys, args := p.script()
	run := s.evalDurably
	if p.bookkeeping() {
		run = func(ctx context.Context, sc *goredis.Script, keys []string, args ...any) *goredis.Cmd {
			return sc.Run(ctx, s.rdb, keys, args...)
		}
	}
	v, err := run(ctx, applyScript, keys, args...).Result()
	if err != nil {
		return applyResult{}, fail(ctx, what, err)
	}
	switch v := v.(type) {
	case int64:
		return applyResult{res: v}, nil
	case []any:
		if len(v) == 2 {
			claimed, _ := v[1].(string)
			return applyResult{res: casWritten, claimed: claimed}, nil
		}
	}
	return applyResult{}, fmt.Errorf("redis: %s: unexpected script result %v", what, v)
}

// split divides p into the part that shares the slot of its first key and
// the rest, by slot, in order. On a single server it is all one part.
func (s *Store) split(p plan) (first plan, rest []plan) {
	if len(p.ops) == 0 {
		return p, nil
	}
	bySlot := map[string]int{}
	tag := hashTag(p.ops[0].key)
	for _, op := range p.ops {
		t := hashTag(op.key)
		if !s.cluster || t == tag {
			first.ops = append(first.ops, op)
			continue
		}
		i, ok := bySlot[t]
		if !ok {
			i = len(rest)
			bySlot[t] = i
			rest = append(rest, plan{})
		}
		rest[i].ops = append(rest[i].ops, op)
	}
	return first, rest
}

// run applies p, split by slot where it must be: the part holding its
// first key (the guarded write) first, the rest only if that wrote. The
// rest carries no guards, only index entries, TTLs and the job stream.
func (s *Store) run(ctx context.Context, what string, p plan) (applyResult, error) {
	first, rest := s.split(p)
	r, err := s.apply(ctx, what, first)
	if err != nil || r.res != casWritten {
		return r, err
	}
	for _, part := range rest {
		pr, err := s.apply(ctx, what, part)
		if err != nil {
			return r, err
		}
		if pr.claimed != "" {
			r.claimed = pr.claimed
		}
	}
	return r, nil
}
