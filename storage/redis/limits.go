package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

var _ storage.Limiter = (*Store)(nil)

// luaGCRA is storage.GCRA and storage.GCRASpend in Lua, for every script
// that decides or spends a limit; the storage tests pin both to the Go
// definitions. Numbers are doubles in Lua: µs since the epoch (~1.8e15)
// are exact well below 2^53, and are written back with %.0f, as tostring
// would round them to 14 digits. A key holds a theoretical arrival time
// in µs and expires when that time passes, as it then limits nothing.
//
// decide(first, n, a) decides the checks on KEYS[first .. first+n-1],
// whose arguments start at ARGV[a]: now in µs, then count, period in µs
// and cost for each key. It returns 0 and the tats to store when all
// allow, else the refusing check (1-based) and µs until it allows.
// commit(first, nxt, now) stores them.
const luaGCRA = `
local function gcra(tat, now, count, period, cost)
  local interval = math.max(math.floor(period / count), 1)
  local n = math.max(tat, now) + math.max(cost, 1) * interval
  if n - period > now then return tat, n - period - now end
  if cost == 0 then return tat, 0 end
  return n, 0
end
local function gcraSpend(tat, now, count, period, cost)
  local interval = math.max(math.floor(period / count), 1)
  return math.max(math.max(tat, now) + cost * interval, now)
end
local function decide(first, n, a)
  local now = tonumber(ARGV[a])
  local nxt = {}
  for j = 0, n - 1 do
    local b = a + 1 + 3 * j
    local cost = tonumber(ARGV[b + 2])
    local tat = tonumber(redis.call('GET', KEYS[first + j]) or '0')
    local t, retry = gcra(tat, now, tonumber(ARGV[b]), tonumber(ARGV[b + 1]), cost)
    if retry > 0 then return j + 1, retry end
    if cost > 0 then nxt[j] = t end
  end
  return 0, nxt
end
local function commit(first, nxt, now)
  for j, t in pairs(nxt) do
    redis.call('SET', KEYS[first + j], string.format('%.0f', t), 'PX', math.ceil((t - now) / 1000))
  end
end
`

// limitScript is storage.GCRA over several keys of one slot: it decides
// every check first and spends only if all allow, so a refused request
// spends nothing.
//
//	KEYS   the keys, one per check
//	ARGV   now in µs, then count, period in µs and cost for each key
//
// It returns {0, 0} when allowed, else {i, µs until allowed} naming the
// first check (1-based) that refused.
var limitScript = goredis.NewScript(luaGCRA + `
local i, r = decide(1, #KEYS, 1)
if i > 0 then return {i, r} end
commit(1, r, tonumber(ARGV[1]))
return {0, 0}
`)

// limitArgs appends what decide reads of checks: now, then each check's
// count, period and cost.
func limitArgs(args []any, now time.Time, checks []storage.LimitCheck) []any {
	args = append(args, now.UnixMicro())
	for _, c := range checks {
		args = append(args, c.Limit.Count, c.Limit.Period.Microseconds(), c.Cost)
	}
	return args
}

// limitKey keeps a scoped limit with its account's keys (one slot), so
// an account's limits are decided in one script; other keys get a tag of
// their own.
func limitKey(c storage.LimitCheck) string {
	if c.Scope != "" {
		return prefix + accountTag(c.Scope) + ":limit:" + c.Key
	}
	return prefix + "{l:" + c.Key + "}"
}

// Limit implements storage.Limiter: one script per hash tag, all in one
// round trip (a pipeline when there are several).
func (s *Store) Limit(ctx context.Context, now time.Time, checks []storage.LimitCheck) (storage.LimitDecision, error) {
	var groups []*limitGroup
	byTag := map[string]*limitGroup{}
	for _, c := range checks {
		if c.Limit.Off() {
			continue
		}
		key := limitKey(c)
		tag := key
		if c.Scope != "" {
			tag = accountTag(c.Scope)
		}
		g := byTag[tag]
		if g == nil {
			g = &limitGroup{}
			byTag[tag] = g
			groups = append(groups, g)
		}
		g.keys = append(g.keys, key)
		g.checks = append(g.checks, c)
	}
	for _, g := range groups {
		g.args = limitArgs(nil, now, g.checks)
	}
	var replies []*goredis.Cmd
	switch len(groups) {
	case 0:
		return storage.LimitDecision{Allowed: true}, nil
	case 1:
		replies = []*goredis.Cmd{limitScript.Run(ctx, s.rdb, groups[0].keys, groups[0].args...)}
	default:
		replies = s.limitPipelined(ctx, groups)
	}
	for i, r := range replies {
		res, err := r.Int64Slice()
		if err != nil {
			return storage.LimitDecision{}, fail(ctx, "rate limit", err)
		}
		if len(res) != 2 || res[0] < 0 || res[0] > int64(len(groups[i].checks)) {
			return storage.LimitDecision{}, fmt.Errorf("redis: rate limit: unexpected reply %s", strconv.Quote(r.String()))
		}
		if res[0] > 0 {
			return storage.LimitDecision{Refused: groups[i].checks[res[0]-1].Name, RetryAfter: time.Duration(res[1]) * time.Microsecond}, nil
		}
	}
	return storage.LimitDecision{Allowed: true}, nil
}

// limitGroup is the checks of one hash tag: one script run.
type limitGroup struct {
	keys   []string
	args   []any
	checks []storage.LimitCheck
}

// limitPipelined runs one script per group in one pipeline. A pipeline
// learns that Redis lacks the script (NOSCRIPT, after a restart or a
// failover) only once it has run, and a group refused so ran nothing:
// those go again with EVAL, which loads it.
func (s *Store) limitPipelined(ctx context.Context, groups []*limitGroup) []*goredis.Cmd {
	replies := make([]*goredis.Cmd, len(groups))
	_, _ = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, g := range groups {
			replies[i] = limitScript.EvalSha(ctx, p, g.keys, g.args...)
		}
		return nil
	})
	for i, g := range groups {
		if err := replies[i].Err(); err != nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			replies[i] = limitScript.Eval(ctx, s.rdb, g.keys, g.args...)
		}
	}
	return replies
}
