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

// limitScript is storage.GCRA over several keys of one slot: it decides
// every check first and spends only if all allow, so a refused request
// spends nothing. Each key holds a theoretical arrival time in µs and
// expires when that time passes, as it then limits nothing.
//
//	KEYS   the keys, one per check
//	ARGV   now in µs, then count, period in µs and cost for each key
//
// It returns {0, 0} when allowed, else {i, µs until allowed} naming the
// first check (1-based) that refused. Numbers are doubles in Lua: µs
// since the epoch (~1.8e15) are exact well below 2^53, and are written
// back with %.0f, as tostring would round them to 14 digits.
var limitScript = goredis.NewScript(`
local now = tonumber(ARGV[1])
local nxt = {}
for i = 1, #KEYS do
  local count, period, cost = tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i]), tonumber(ARGV[3*i+1])
  local interval = math.max(math.floor(period / count), 1)
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local n = math.max(tat, now) + math.max(cost, 1) * interval
  if n - period > now then return {i, n - period - now} end
  if cost > 0 then nxt[i] = n end
end
for i = 1, #KEYS do
  if nxt[i] then
    redis.call('SET', KEYS[i], string.format('%.0f', nxt[i]), 'PX', math.ceil((nxt[i] - now) / 1000))
  end
end
return {0, 0}
`)

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
			g = &limitGroup{args: []any{now.UnixMicro()}}
			byTag[tag] = g
			groups = append(groups, g)
		}
		g.keys = append(g.keys, key)
		g.args = append(g.args, c.Limit.Count, c.Limit.Period.Microseconds(), c.Cost)
		g.checks = append(g.checks, c)
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
