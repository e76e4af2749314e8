package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
)

const (
	defaultReclaimAfter = 30 * time.Second
	defaultWorkers      = 4
)

// Config holds what Open needs besides the URL; its zero value is usable.
type Config struct {
	// Now is the clock TTLs are computed from; nil means time.Now. TTLs are
	// relative (PEXPIRE), so a store with a test clock still keeps what it
	// writes for as long as that clock says.
	Now func() time.Time
	// Retention is how long valid orders and certificates are kept after
	// they expire (storage.Retention.Finished); 0 means 720h.
	Retention time.Duration
	// Consumer names this replica in the job stream's consumer group; ""
	// means hostname-pid-random. A name reused after a crash lets the
	// replica resume its own pending jobs sooner; a random one is safe.
	Consumer string
	// ReclaimAfter is how long a job may stay unacknowledged before another
	// consumer takes it over; 0 means 30s. It must exceed the longest job.
	ReclaimAfter time.Duration
	// Workers is how many jobs Consume handles at once; 0 means 4.
	Workers int
	// Hook, if not nil, is added to the client (tests count round trips).
	Hook goredis.Hook
	// OrderTTL is how long other orders and authorizations are kept after
	// they expire (storage.Retention.Grace); 0 means 1h.
	OrderTTL time.Duration
	// MinReplicas is how many replicas must confirm (WAIT) each write
	// whose outcome a client is told about before the call returns; too
	// few in WaitTimeout is storage.ErrUnavailable. AutoReplicas (0) is
	// every healthy replica of the master, followed as it changes;
	// NoReplicas turns WAIT off. Nonces and job bookkeeping never wait.
	MinReplicas int
	// WaitTimeout bounds each WAIT; 0 means 1s, or half the URL's
	// read_timeout if that is less.
	WaitTimeout time.Duration
}

// Store is a storage.Store on Redis: standalone, Sentinel or Cluster. Any
// number of acmed replicas may share one.
type Store struct {
	rdb     goredis.UniversalClient
	cluster bool

	now          func() time.Time
	keep         storage.Retention
	consumer     string
	reclaimAfter time.Duration
	workers      int

	minReplicas int
	replicas    *replicaCount // with AutoReplicas
	waitTimeout time.Duration
}

var _ storage.Store = (*Store)(nil)

// Open connects to Redis at url (see ParseURL) and checks it with a PING
// bounded by ctx. A Redis that does not answer is storage.ErrUnavailable.
func Open(ctx context.Context, url string, cfg Config) (*Store, error) {
	opts, err := ParseURL(url)
	if err != nil {
		return nil, err
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReclaimAfter <= 0 {
		cfg.ReclaimAfter = defaultReclaimAfter
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.MinReplicas < NoReplicas {
		return nil, fmt.Errorf("redis: MinReplicas %d: want a count, AutoReplicas or NoReplicas", cfg.MinReplicas)
	}
	if cfg.WaitTimeout <= 0 {
		cfg.WaitTimeout = min(defaultWaitTimeout, opts.ReadTimeout/2)
	}
	if cfg.Consumer == "" {
		if cfg.Consumer, err = consumerName(); err != nil {
			return nil, err
		}
	}
	if opts.ClientName == "" {
		// So CLIENT LIST shows which connections are acmed's.
		opts.ClientName = "acmed"
	}
	rdb := goredis.NewUniversalClient(opts)
	if cfg.Hook != nil {
		rdb.AddHook(cfg.Hook)
	}
	s := &Store{
		rdb:          rdb,
		cluster:      opts.IsClusterMode,
		now:          cfg.Now,
		keep:         storage.Retention{Finished: cfg.Retention, Grace: cfg.OrderTTL},
		consumer:     cfg.Consumer,
		reclaimAfter: cfg.ReclaimAfter,
		workers:      cfg.Workers,
		minReplicas:  cfg.MinReplicas,
		waitTimeout:  cfg.WaitTimeout,
	}
	if err := s.Ping(ctx); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("open %s: %w", redact(url), err)
	}
	if cfg.MinReplicas == AutoReplicas {
		if s.replicas, err = newReplicaCount(ctx, opts); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("open %s: %w", redact(url), fail(ctx, "replicas", err))
		}
	}
	if cfg.MinReplicas != NoReplicas && !opts.IsClusterMode {
		rdb.AddHook(fence{s})
	}
	return s, nil
}

// consumerName is unique per process: two replicas must never share a
// name, or each would ack the other's jobs as its own.
func consumerName() (string, error) {
	host, err := os.Hostname()
	if err != nil {
		host = "acmed"
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("redis: consumer name: %w", err)
	}
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:])), nil
}

// Ping reports whether Redis answers: the master, through Sentinel; some
// node, on a Cluster.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fail(ctx, "ping", err)
	}
	return nil
}

// Close closes the client; a running Consume returns.
func (s *Store) Close() error {
	if s.replicas != nil {
		_ = s.replicas.close()
	}
	return s.rdb.Close()
}

// ttlUntil is the TTL for a key that should live until t by the store's
// clock. A key whose time has passed still gets a minute, so what a caller
// just wrote can be read back; Redis would delete it at once otherwise.
func (s *Store) ttlUntil(t time.Time) int64 {
	return max(t.Sub(s.now()), time.Minute).Milliseconds()
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
