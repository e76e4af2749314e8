package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

var _ storage.CRLs = (*Store)(nil)

// CRLs live under {crl:ISSUER}, one slot per issuer: the number last
// handed out (a string), and the latest CRL (a hash: number, meta, der),
// apart so that polling for a new number reads no DER. The revocation
// revision is the field crlrev of the inventory's stats hash, bumped by
// luaInventory's inv_op in the script that changes a revocation.
func crlNumberKey(issuer string) string { return prefix + "{crl:" + issuer + "}:number" }
func crlLatestKey(issuer string) string { return prefix + "{crl:" + issuer + "}:latest" }

// crlKeep is how long the CRL keys outlive their last write: a CRL is
// rebuilt many times a day, so they expire only once an issuer has been
// retired for a year. The number's floor (NextCRLNumber's atLeast) keeps
// numbers growing even then.
const crlKeep = 366 * 24 * time.Hour

// crlNumberScript: KEYS[1] the number; ARGV the floor and the TTL (ms).
var crlNumberScript = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if n < floor then
  redis.call('SET', KEYS[1], ARGV[1])
  n = floor
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return tostring(n)
`)

// crlPutScript: KEYS[1] the latest; ARGV number, meta, der, TTL (ms).
// Numbers are compared as decimal strings of equal length or by length,
// so no float rounding can let an older CRL win.
var crlPutScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'number')
local new = ARGV[1]
if cur and (#cur > #new or (#cur == #new and cur >= new)) then return 0 end
redis.call('HSET', KEYS[1], 'number', new, 'meta', ARGV[2], 'der', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// NextCRLNumber waits for replicas (WAIT): a number a failover lost
// could be handed out twice.
func (s *Store) NextCRLNumber(ctx context.Context, issuer string, atLeast uint64) (uint64, error) {
	res, err := s.evalDurably(ctx, crlNumberScript, []string{crlNumberKey(issuer)},
		strconv.FormatUint(atLeast, 10), crlKeep.Milliseconds()).Text()
	if err != nil {
		return 0, fail(ctx, "next CRL number", err)
	}
	n, err := strconv.ParseUint(res, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: next CRL number: %q: %w", res, err)
	}
	return n, nil
}

func (s *Store) PutCRL(ctx context.Context, c *storage.CRL) (bool, error) {
	meta, err := json.Marshal(c) // all but the DER
	if err != nil {
		return false, fmt.Errorf("redis: encode CRL of %s: %w", c.Issuer, err)
	}
	n, err := s.evalDurably(ctx, crlPutScript, []string{crlLatestKey(c.Issuer)},
		strconv.FormatUint(c.Number, 10), meta, c.DER, crlKeep.Milliseconds()).Int64()
	if err != nil {
		return false, fail(ctx, "put CRL", err)
	}
	return n == 1, nil
}

func (s *Store) LatestCRLNumber(ctx context.Context, issuer string) (uint64, error) {
	res, err := s.rdb.HGet(ctx, crlLatestKey(issuer), "number").Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fail(ctx, "latest CRL number", err)
	}
	n, err := strconv.ParseUint(res, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: latest CRL number of %s: %q: %w", issuer, res, err)
	}
	return n, nil
}

func (s *Store) LatestCRL(ctx context.Context, issuer string) (*storage.CRL, error) {
	vals, err := s.rdb.HMGet(ctx, crlLatestKey(issuer), "meta", "der").Result()
	if err != nil {
		return nil, fail(ctx, "latest CRL", err)
	}
	meta, _ := vals[0].(string)
	der, _ := vals[1].(string)
	if meta == "" || der == "" {
		return nil, notFound("CRL", issuer)
	}
	var c storage.CRL
	if err := json.Unmarshal([]byte(meta), &c); err != nil {
		return nil, fmt.Errorf("redis: decode CRL of %s: %w", issuer, err)
	}
	c.DER = []byte(der)
	return &c, nil
}

func (s *Store) RevocationRevision(ctx context.Context) (uint64, error) {
	res, err := s.rdb.HGet(ctx, invKey("stats"), "crlrev").Result()
	if errors.Is(err, goredis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fail(ctx, "revocation revision", err)
	}
	n, err := strconv.ParseUint(res, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("redis: revocation revision %q: %w", res, err)
	}
	return n, nil
}
