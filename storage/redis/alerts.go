package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
)

func leaseKey(name string) string { return prefix + "lease:" + name }

// leaseScript takes or extends a lease: KEYS[1] the lease, ARGV holder
// and TTL in ms; 1 if holder has it now.
var leaseScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`)

// TryLease waits for replicas (WAIT) like any write: a lease a failover
// dropped would let a second replica take it while the first still
// thinks it holds it.
func (s *Store) TryLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if holder == "" {
		return false, errors.New("redis: lease: no holder")
	}
	n, err := s.evalDurably(ctx, leaseScript, []string{leaseKey(name)}, holder, max(ttl.Milliseconds(), 1)).Int64()
	if err != nil {
		return false, fail(ctx, "lease "+name, err)
	}
	return n == 1, nil
}

// The alert outbox lives under {alerts}: a marker per event and serial
// (queued once, delivered or not), a hash per delivery (one alert, one
// webhook), and the deliveries by due time (ms). All of it expires
// Retention after the certificate does, or after it was queued if that
// is later: an alert about a certificate the store no longer knows has
// no one left to tell.
const alertTag = "{alerts}"

func alertSentKey(event, serial string) string {
	return prefix + alertTag + ":sent:" + event + ":" + serial
}
func alertKey(id string) string { return prefix + alertTag + ":d:" + id }

var alertDueKey = prefix + alertTag + ":due"

// alertID names the delivery of event about serial to url: the same on
// every replica.
func alertID(event, serial, url string) string {
	h := sha256.Sum256([]byte(event + "\x00" + serial + "\x00" + url))
	return hex.EncodeToString(h[:16])
}

// alertRecord is an alert as stored: times in Unix ns, so they read back
// as the instants they were, in UTC as records are.
type alertRecord struct {
	Event       string            `json:"event"`
	Serial      string            `json:"serial"`
	Identifiers []acme.Identifier `json:"identifiers,omitempty"`
	Account     string            `json:"account,omitempty"`
	NotAfter    int64             `json:"not_after"`
	CampaignID  string            `json:"campaign_id,omitempty"`
	DetectedAt  int64             `json:"detected_at"`
}

func nsOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func nsBack(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// queueAlertScript queues one delivery per webhook unless the marker
// (KEYS[1]) exists: 1 if it queued.
//
//	KEYS  marker, due list, then one delivery per webhook
//	ARGV  TTL (ms), due (ms), due (ns), alert (JSON), then ID and URL per
//	      webhook
var queueAlertScript = goredis.NewScript(luaExtend + `
local ttl = tonumber(ARGV[1])
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ttl) then return 0 end
for j = 3, #KEYS do
  local a = 5 + (j - 3) * 2
  redis.call('HSET', KEYS[j], 'id', ARGV[a], 'url', ARGV[a + 1], 'alert', ARGV[4], 'attempts', 0, 'due', ARGV[3])
  redis.call('PEXPIRE', KEYS[j], ttl)
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[a])
end
extend(KEYS[2], ttl)
return 1
`)

func (s *Store) QueueAlert(ctx context.Context, a acme.Alert, urls []string) (bool, error) {
	raw, err := json.Marshal(alertRecord{
		Event: a.Event, Serial: a.Serial, Identifiers: a.Identifiers, Account: a.Account,
		NotAfter: nsOf(a.NotAfter), CampaignID: a.CampaignID, DetectedAt: nsOf(a.DetectedAt),
	})
	if err != nil {
		return false, fmt.Errorf("redis: encode alert: %w", err)
	}
	until := a.NotAfter
	if now := s.now(); until.Before(now) {
		until = now
	}
	ttl := s.ttlUntil(until.Add(s.retention()))
	keys := []string{alertSentKey(a.Event, a.Serial), alertDueKey}
	args := []any{ttl, a.DetectedAt.UnixMilli(), nsOf(a.DetectedAt), raw}
	for _, u := range urls {
		id := alertID(a.Event, a.Serial, u)
		keys = append(keys, alertKey(id))
		args = append(args, id, u)
	}
	n, err := s.evalDurably(ctx, queueAlertScript, keys, args...).Int64()
	if err != nil {
		return false, fail(ctx, "queue alert", err)
	}
	return n == 1, nil
}

// DueAlerts reads the due list up to now's millisecond and the deliveries
// in one pipeline; one due later within that millisecond is left for the
// next call. A delivery gone (expired) leaves the list.
func (s *Store) DueAlerts(ctx context.Context, now time.Time, limit int) ([]storage.AlertDelivery, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("redis: due alerts: limit %d is not positive", limit)
	}
	ids, err := s.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{
		Key: alertDueKey, Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10), ByScore: true, Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fail(ctx, "due alerts", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*goredis.MapStringStringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGetAll(ctx, alertKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fail(ctx, "due alerts", err)
	}
	var out []storage.AlertDelivery
	var gone []any
	for i, id := range ids {
		h := cmds[i].Val()
		if len(h) == 0 {
			gone = append(gone, id)
			continue
		}
		d, err := decodeDelivery(id, h)
		if err != nil {
			return nil, err
		}
		if !d.Due.After(now) {
			out = append(out, d)
		}
	}
	if len(gone) > 0 {
		_ = s.rdb.ZRem(ctx, alertDueKey, gone...).Err() // tidying
	}
	return out, nil
}

func decodeDelivery(id string, h map[string]string) (storage.AlertDelivery, error) {
	var r alertRecord
	if err := json.Unmarshal([]byte(h["alert"]), &r); err != nil {
		return storage.AlertDelivery{}, fmt.Errorf("redis: decode alert delivery %q: %w", id, err)
	}
	attempts, err1 := strconv.Atoi(h["attempts"])
	due, err2 := strconv.ParseInt(h["due"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return storage.AlertDelivery{}, fmt.Errorf("redis: decode alert delivery %q: %w", id, err)
	}
	return storage.AlertDelivery{
		ID: id, URL: h["url"], Attempts: attempts, Due: nsBack(due),
		Alert: acme.Alert{
			Event: r.Event, Serial: r.Serial, Identifiers: r.Identifiers, Account: r.Account,
			NotAfter: nsBack(r.NotAfter), CampaignID: r.CampaignID, DetectedAt: nsBack(r.DetectedAt),
		},
	}, nil
}

// alertDoneScript removes a delivery (KEYS[1]) and its place in the due
// list (KEYS[2], member ARGV[1]).
var alertDoneScript = goredis.NewScript(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)

// alertRetryScript makes a delivery that still exists due again: ARGV ID,
// due (ms), due (ns), attempts.
var alertRetryScript = goredis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'due', ARGV[3], 'attempts', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`)

// AlertDelivered waits for replicas: a delivery a failover brought back
// would be sent twice.
func (s *Store) AlertDelivered(ctx context.Context, id string) error {
	if err := s.evalDurably(ctx, alertDoneScript, []string{alertKey(id), alertDueKey}, id).Err(); err != nil {
		return fail(ctx, "alert delivered", err)
	}
	return nil
}

func (s *Store) AlertRetry(ctx context.Context, id string, at time.Time, attempts int) error {
	err := s.evalDurably(ctx, alertRetryScript, []string{alertKey(id), alertDueKey}, id, at.UnixMilli(), nsOf(at), attempts).Err()
	if err != nil {
		return fail(ctx, "alert retry", err)
	}
	return nil
}
