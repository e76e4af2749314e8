package embedded

import (
	"context"
	"sync"
	"time"

	"github.com/acmed/acmed/storage"
)

// maxLimitKeys bounds the limiter's map. Keys whose state has run out are
// pruned as new ones come; past the bound, live keys are dropped at random,
// which can only ever let a request through, never refuse one.
const maxLimitKeys = 1 << 20

// limits is the embedded store's Limiter: the store serves one process, so
// the state lives in memory, not in the file, and a restart forgets it.
// The zero value is ready to use.
type limits struct {
	mu  sync.Mutex
	tat map[string]int64 // key -> theoretical arrival time, µs since epoch
	// sweep counts insertions, to prune expired keys now and then.
	sweep int
}

var _ storage.Limiter = (*Store)(nil)

// Limit implements storage.Limiter. All checks are decided atomically,
// whatever their scopes.
func (s *Store) Limit(_ context.Context, now time.Time, checks []storage.LimitCheck) (storage.LimitDecision, error) {
	return s.limits.limit(now.UnixMicro(), checks), nil
}

func (l *limits) limit(now int64, checks []storage.LimitCheck) storage.LimitDecision {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat == nil {
		l.tat = map[string]int64{}
	}
	next := make([]int64, len(checks))
	for i, c := range checks {
		if c.Limit.Off() {
			continue
		}
		n, retry, ok := storage.GCRA(c.Limit, l.tat[limitKey(c)], now, c.Cost)
		if !ok {
			return storage.LimitDecision{Refused: c.Name, RetryAfter: time.Duration(retry) * time.Microsecond}
		}
		next[i] = n
	}
	for i, c := range checks {
		if c.Limit.Off() || c.Cost == 0 {
			continue
		}
		k := limitKey(c)
		if _, ok := l.tat[k]; !ok {
			l.prune(now)
		}
		l.tat[k] = next[i]
	}
	return storage.LimitDecision{Allowed: true}
}

// spend is storage.Spending: counts, refusing nothing.
func (l *limits) spend(now int64, checks []storage.LimitCheck) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tat == nil {
		l.tat = map[string]int64{}
	}
	for _, c := range checks {
		if c.Limit.Off() {
			continue
		}
		k := limitKey(c)
		tat, ok := l.tat[k]
		if !ok {
			l.prune(now)
		}
		if next := storage.GCRASpend(c.Limit, tat, now, c.Cost); next > now {
			l.tat[k] = next
		} else {
			delete(l.tat, k)
		}
	}
}

// prune drops keys whose tat has passed (they no longer limit anything)
// every so many insertions, and makes room when the map is full.
func (l *limits) prune(now int64) {
	l.sweep++
	if l.sweep < 1024 && len(l.tat) < maxLimitKeys {
		return
	}
	l.sweep = 0
	for k, tat := range l.tat {
		if tat <= now {
			delete(l.tat, k)
		}
	}
	for k := range l.tat {
		if len(l.tat) < maxLimitKeys {
			break
		}
		delete(l.tat, k) // random victims: the map is full of live limits
	}
}

func limitKey(c storage.LimitCheck) string { return c.Scope + "\x00" + c.Key }
