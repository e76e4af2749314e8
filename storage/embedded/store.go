// Package embedded is acmed's default store: one bbolt file that needs no
// server, for a single acmed process (DESIGN.md decision 5). Pointing acmed
// at Redis instead is what lets several replicas share a CA.
package embedded

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/acmed/acmed/storage"
)

var (
	// ErrLocked: another process holds the file. bbolt takes an exclusive
	// lock on it, so only one acmed can serve from one file.
	ErrLocked = errors.New("file is locked by another acmed process?")

	errClosed = errors.New("embedded store: closed")
)

const (
	defaultWorkers     = 4
	defaultOpenTimeout = 2 * time.Second
)

// Bucket names. Every bucket is created by Open, so a transaction can use
// tx.Bucket without checking for nil.
const (
	bucketAccounts      = "accounts"
	bucketAccountKeys   = "account-keys"   // key thumbprint → account ID
	bucketOrders        = "orders"         // order ID → order
	bucketAccountOrders = "account-orders" // account ID, 0, sequence → order ID
	bucketAuthzs        = "authzs"
	bucketValidAuthzs   = "valid-authz" // account, identifier, wildcard → authz ID
	bucketCerts         = "certs"
	bucketJobs          = "jobs" // sequence → job and its queue time (jobRecord)
	// The estate's buckets are described in inventory.go, campaigns.go
	// and outbox.go.
)

// Config holds what Open needs besides the path; its zero value is usable.
type Config struct {
	// Now is the clock nonce expiry is judged by; nil means time.Now.
	Now func() time.Time
	// Workers is how many jobs Consume handles at once; 0 means 4.
	Workers int
	// OpenTimeout bounds the wait for the file lock; 0 means 2s. Without a
	// bound, a second acmed on the same file would hang silently.
	OpenTimeout time.Duration
	// Retention is how long valid orders and certificates are kept after
	// they expire (storage.Retention.Finished); 0 means 720h. Grace is how
	// long other orders and authorizations are (storage.Retention.Grace);
	// 0 means 1h. SweepEvery is how often Sweep runs in the background; 0
	// means hourly, negative never.
	Retention  time.Duration
	Grace      time.Duration
	SweepEvery time.Duration
	// Logger receives what background work (the sweep, leftover jobs)
	// meets and cannot report to a caller; nil discards it.
	Logger *slog.Logger
}

// Store is a storage.Store over one bbolt file. It is safe for concurrent
// use by the goroutines of one process.
type Store struct {
	db      *bolt.DB
	path    string
	existed bool // the file was there before Open (see ClaimCA)
	log     *slog.Logger
	now     func() time.Time
	workers int
	keep    storage.Retention
	nonces  nonces
	limits  limits // in process: the embedded store serves one process

	// leftovers is the job bucket's sequence at Open: records up to it
	// were left by an earlier run, later ones are claimed in this one.
	leftovers uint64
	consuming atomic.Bool
	released  releasedJobs

	closed    chan struct{}
	closeOnce sync.Once
	closeErr  error

	// failed is the damage background work met in the file, if any.
	failed atomic.Pointer[error]
}

var _ storage.Store = (*Store)(nil)

// Open opens the store at path, creating the file (0600) and its directory
// (0700) if missing: the file holds account keys and certificates. An
// existing file is checked first, whole: one that is empty, truncated or
// damaged is an error naming it (ErrDamaged for the last two), never a
// crash or a silently empty store.
func Open(path string, cfg Config) (*Store, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = defaultWorkers
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = defaultOpenTimeout
	}
	if cfg.SweepEvery == 0 {
		cfg.SweepEvery = defaultSweepEvery
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	existed, err := checkFile(path)
	if err != nil {
		return nil, err
	}
	db, err := openBolt(path, bolt.Options{Timeout: cfg.OpenTimeout})
	switch {
	case errors.Is(err, berrors.ErrTimeout):
		return nil, fmt.Errorf("embedded store: open %s: %w", path, ErrLocked)
	case errors.Is(err, errFault), errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum):
		return nil, damaged(path, "%v", err)
	case err != nil:
		return nil, fmt.Errorf("embedded store: open %s: %w", path, err)
	}
	if existed {
		if err := verify(db); err != nil {
			_ = db.Close()
			return nil, damaged(path, "%v", err)
		}
	}
	// Writes go through db.Batch: concurrent requests share one fsync
	// instead of queueing for one each. A short delay keeps a lone writer
	// from waiting for company that is not coming.
	db.MaxBatchDelay = time.Millisecond
	var leftovers uint64
	err = db.Update(func(tx *bolt.Tx) error {
		indexed := tx.Bucket([]byte(bucketInvNotAfter)) != nil
		if err := createBuckets(tx); err != nil {
			return err
		}
		if !indexed {
			if err := buildInventory(tx, cfg.Now()); err != nil {
				return err
			}
		}
		leftovers = tx.Bucket([]byte(bucketJobs)).Sequence()
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("embedded store: open %s: %w", path, err)
	}
	s := &Store{
		db:        db,
		path:      path,
		existed:   existed,
		log:       cfg.Logger,
		now:       cfg.Now,
		workers:   cfg.Workers,
		keep:      storage.Retention{Finished: cfg.Retention, Grace: cfg.Grace},
		nonces:    newNonces(),
		leftovers: leftovers,
		released:  newReleasedJobs(),
		closed:    make(chan struct{}),
	}
	if cfg.SweepEvery > 0 {
		go s.sweepLoop(cfg.SweepEvery)
	}
	return s, nil
}

func createBuckets(tx *bolt.Tx) error {
	for _, name := range []string{
		bucketAccounts, bucketAccountKeys, bucketOrders, bucketAccountOrders,
		bucketAuthzs, bucketValidAuthzs, bucketCerts, bucketJobs,
		bucketInvNotAfter, bucketInvHours, bucketInvRevoked, bucketInvAccount,
		bucketInvProfile, bucketInvSAN, bucketInvRenew, bucketInvIDSet, bucketInvMeta,
		bucketCampaigns, bucketCampaignOrder, bucketCampaignPending,
		bucketLeases, bucketAlerts, bucketAlertsDue, bucketAlertsSent,
		bucketBlockedKeys,
		bucketCRL,
	} {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// Ping reports whether the store is open. The file is local, so there is no
// connection that could have been lost.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case <-s.closed:
		return errClosed
	default:
	}
	if err := s.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// Close closes the file and stops a running Consume. Later calls return
// the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		if err := s.failed.Load(); err != nil {
			// A fault may have left bbolt's writer lock held, and Close
			// would wait for it forever; the process is about to end.
			s.closeErr = *err
			return
		}
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}
