package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
)

// The store's operations, as the op label names them.
const (
	opAccount = iota
	opAccountByKey
	opCreateAccount
	opUpdateAccount
	opListAccounts
	opCreateOrder
	opOrder
	opUpdateOrder
	opAccountOrders
	opAuthorization
	opAuthorizations
	opUpdateAuthorization
	opValidAuthorization
	opPutCertificate
	opCertificate
	opUpdateCertificate
	opNonceKey
	opConsumeNonce
	opConsumeNonceForAccount
	opFinishJob
	opReleaseJob
	opClaimCA
	opCreateEABKey
	opEABKey
	opListEABKeys
	opUpdateEABKey
	opLimit
	opBlockKey
	opBlockedKey
	numOps
)

var opNames = [numOps]string{
	"account", "account_by_key", "create_account", "update_account", "list_accounts",
	"create_order", "order", "update_order", "account_orders",
	"authorization", "authorizations", "update_authorization", "valid_authorization",
	"put_certificate", "certificate", "update_certificate",
	"nonce_key", "consume_nonce", "consume_nonce_for_account",
	"finish_job", "release_job", "claim_ca",
	"create_eab_key", "eab_key", "list_eab_keys", "update_eab_key",
	"limit", "block_key", "blocked_key",
}

// storeMetrics holds each operation's histogram and error counter,
// resolved once: a store call costs two clock reads and an observation.
type storeMetrics struct {
	duration [numOps]prometheus.Observer
	errs     [numOps]prometheus.Counter
	refusals *prometheus.CounterVec
}

func newStoreMetrics(reg prometheus.Registerer, refusals *prometheus.CounterVec) *storeMetrics {
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Subsystem: "store", Name: "operation_duration_seconds",
		Help: "Time of one store operation (a Redis round trip or script, a bbolt transaction), by operation, failures included.",
		// 100µs to 1.6s, ×4: an embedded read is tens of µs, a Redis
		// round trip a fraction of a ms, a synced write a few ms.
		Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8),
	}, []string{"op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: Namespace, Subsystem: "store", Name: "errors_total",
		Help: "Store operations that failed (unavailable backend, timeout, corrupt record), by operation; not-found, conflicts, refusals and rate limits are answers, not failures.",
	}, []string{"op"})
	reg.MustRegister(duration, errs)
	s := &storeMetrics{refusals: refusals}
	for i, name := range opNames {
		s.duration[i] = duration.WithLabelValues(name)
		s.errs[i] = errs.WithLabelValues(name)
	}
	return s
}

func (s *storeMetrics) done(op int, start time.Time, err error) {
	s.duration[op].Observe(time.Since(start).Seconds())
	if err != nil && failed(err) {
		s.errs[op].Inc()
	}
}

// failed tells a backend failure from the answers a store gives with an
// error: not found, a taken key, the update function's refusal (a
// problem for the client) and a create's rate-limit refusal.
func failed(err error) bool {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrConflict) || errors.Is(err, context.Canceled) {
		return false
	}
	var p *acme.Problem
	var le *storage.LimitError
	return !errors.As(err, &p) && !errors.As(err, &le)
}

// InstrumentStore returns s measured: the latency and failures of every
// call the ACME hot path makes, and the rate-limit refusals the store
// decides. The result is s's own type embedded, so that every other
// method of s (the inventory, backups, leases, what later issues add)
// stays reachable by type assertion, unmeasured. A store of another type
// is returned as it is.
func (m *Metrics) InstrumentStore(s storage.Store) storage.Store {
	switch b := s.(type) {
	case *embedded.Store:
		return &embeddedStore{innerEmbedded{b}, m.measure(b)}
	case *redis.Store:
		return &redisStore{innerRedis{b}, m.measure(b)}
	}
	m.log.Warn("metrics: store operations are not measured for this store type")
	return s
}

// Each backend's wrapper embeds the backend one level deeper than
// measured, whose methods therefore win over the backend's; the backend's
// other methods are promoted as they are.
type (
	innerEmbedded struct{ *embedded.Store }
	embeddedStore struct {
		innerEmbedded
		*measured
	}
	innerRedis struct{ *redis.Store }
	redisStore struct {
		innerRedis
		*measured
	}
)

// measured implements storage.Store (but Consume, Ping and Close, which
// are not operations to time) and storage.Limiter over s.
type measured struct {
	s storage.Store
	l storage.Limiter
	m *storeMetrics
}

type backend interface {
	storage.Store
	storage.Limiter
}

func (m *Metrics) measure(s backend) *measured { return &measured{s: s, l: s, m: m.store} }

func (x *measured) Consume(ctx context.Context, handle func(context.Context, storage.Claim)) error {
	return x.s.Consume(ctx, handle)
}
func (x *measured) Ping(ctx context.Context) error { return x.s.Ping(ctx) }
func (x *measured) Close() error                   { return x.s.Close() }

func (x *measured) Account(ctx context.Context, id string) (*acme.Account, error) {
	t := time.Now()
	a, err := x.s.Account(ctx, id)
	x.m.done(opAccount, t, err)
	return a, err
}

func (x *measured) AccountByKey(ctx context.Context, thumbprint string) (*acme.Account, error) {
	t := time.Now()
	a, err := x.s.AccountByKey(ctx, thumbprint)
	x.m.done(opAccountByKey, t, err)
	return a, err
}

func (x *measured) CreateAccount(ctx context.Context, a *acme.Account) error {
	t := time.Now()
	err := x.s.CreateAccount(ctx, a)
	x.m.done(opCreateAccount, t, err)
	return err
}

func (x *measured) UpdateAccount(ctx context.Context, id string, fn func(*acme.Account) error) (*acme.Account, error) {
	t := time.Now()
	a, err := x.s.UpdateAccount(ctx, id, fn)
	x.m.done(opUpdateAccount, t, err)
	return a, err
}

func (x *measured) ListAccounts(ctx context.Context, cursor string, limit int) ([]string, string, error) {
	t := time.Now()
	ids, next, err := x.s.ListAccounts(ctx, cursor, limit)
	x.m.done(opListAccounts, t, err)
	return ids, next, err
}

func (x *measured) CreateOrder(ctx context.Context, o *acme.Order, authzs []*acme.Authorization, opts ...storage.Option) error {
	t := time.Now()
	err := x.s.CreateOrder(ctx, o, authzs, opts...)
	x.m.done(opCreateOrder, t, err)
	if err != nil {
		x.m.refused(err)
	}
	return err
}

func (x *measured) Order(ctx context.Context, id string) (*acme.Order, error) {
	t := time.Now()
	o, err := x.s.Order(ctx, id)
	x.m.done(opOrder, t, err)
	return o, err
}

func (x *measured) UpdateOrder(ctx context.Context, id string, fn func(*acme.Order) error, opts ...storage.Option) (*acme.Order, error) {
	t := time.Now()
	o, err := x.s.UpdateOrder(ctx, id, fn, opts...)
	x.m.done(opUpdateOrder, t, err)
	return o, err
}

func (x *measured) AccountOrders(ctx context.Context, accountID, cursor string, limit int) ([]string, string, error) {
	t := time.Now()
	ids, next, err := x.s.AccountOrders(ctx, accountID, cursor, limit)
	x.m.done(opAccountOrders, t, err)
	return ids, next, err
}

func (x *measured) Authorization(ctx context.Context, id string) (*acme.Authorization, error) {
	t := time.Now()
	az, err := x.s.Authorization(ctx, id)
	x.m.done(opAuthorization, t, err)
	return az, err
}

func (x *measured) Authorizations(ctx context.Context, ids []string) ([]*acme.Authorization, error) {
	t := time.Now()
	azs, err := x.s.Authorizations(ctx, ids)
	x.m.done(opAuthorizations, t, err)
	return azs, err
}

func (x *measured) UpdateAuthorization(ctx context.Context, id string, fn func(*acme.Authorization) error, opts ...storage.Option) (*acme.Authorization, error) {
	t := time.Now()
	az, err := x.s.UpdateAuthorization(ctx, id, fn, opts...)
	x.m.done(opUpdateAuthorization, t, err)
	return az, err
}

func (x *measured) ValidAuthorization(ctx context.Context, accountID string, id acme.Identifier, wildcard bool) (*acme.Authorization, error) {
	t := time.Now()
	az, err := x.s.ValidAuthorization(ctx, accountID, id, wildcard)
	x.m.done(opValidAuthorization, t, err)
	return az, err
}

func (x *measured) PutCertificate(ctx context.Context, c *acme.Certificate) error {
	t := time.Now()
	err := x.s.PutCertificate(ctx, c)
	x.m.done(opPutCertificate, t, err)
	return err
}

func (x *measured) Certificate(ctx context.Context, serial string) (*acme.Certificate, error) {
	t := time.Now()
	c, err := x.s.Certificate(ctx, serial)
	x.m.done(opCertificate, t, err)
	return c, err
}

func (x *measured) UpdateCertificate(ctx context.Context, serial string, fn func(*acme.Certificate) error, opts ...storage.Option) (*acme.Certificate, error) {
	t := time.Now()
	c, err := x.s.UpdateCertificate(ctx, serial, fn, opts...)
	x.m.done(opUpdateCertificate, t, err)
	return c, err
}

func (x *measured) BlockKey(ctx context.Context, k storage.BlockedKey) error {
	t := time.Now()
	err := x.s.BlockKey(ctx, k)
	x.m.done(opBlockKey, t, err)
	return err
}

func (x *measured) BlockedKey(ctx context.Context, hash string) (*storage.BlockedKey, error) {
	t := time.Now()
	k, err := x.s.BlockedKey(ctx, hash)
	x.m.done(opBlockedKey, t, err)
	return k, err
}

func (x *measured) NonceKey(ctx context.Context, epoch uint32, candidate []byte, expires time.Time) ([]byte, error) {
	t := time.Now()
	k, err := x.s.NonceKey(ctx, epoch, candidate, expires)
	x.m.done(opNonceKey, t, err)
	return k, err
}

func (x *measured) ConsumeNonce(ctx context.Context, nonce string, expires time.Time) (bool, error) {
	t := time.Now()
	ok, err := x.s.ConsumeNonce(ctx, nonce, expires)
	x.m.done(opConsumeNonce, t, err)
	return ok, err
}

func (x *measured) ConsumeNonceForAccount(ctx context.Context, nonce string, expires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	t := time.Now()
	f, err := x.s.ConsumeNonceForAccount(ctx, nonce, expires, accountID, look)
	x.m.done(opConsumeNonceForAccount, t, err)
	return f, err
}

func (x *measured) Finish(ctx context.Context, c storage.Claim) error {
	t := time.Now()
	err := x.s.Finish(ctx, c)
	x.m.done(opFinishJob, t, err)
	return err
}

func (x *measured) Release(ctx context.Context, c storage.Claim) error {
	t := time.Now()
	err := x.s.Release(ctx, c)
	x.m.done(opReleaseJob, t, err)
	return err
}

func (x *measured) ClaimCA(ctx context.Context, id storage.CAIdentity) (storage.CAIdentity, error) {
	t := time.Now()
	got, err := x.s.ClaimCA(ctx, id)
	x.m.done(opClaimCA, t, err)
	return got, err
}

func (x *measured) CreateEABKey(ctx context.Context, k *acme.EABKey) error {
	t := time.Now()
	err := x.s.CreateEABKey(ctx, k)
	x.m.done(opCreateEABKey, t, err)
	return err
}

func (x *measured) EABKey(ctx context.Context, kid string) (*acme.EABKey, error) {
	t := time.Now()
	k, err := x.s.EABKey(ctx, kid)
	x.m.done(opEABKey, t, err)
	return k, err
}

func (x *measured) ListEABKeys(ctx context.Context) ([]*acme.EABKey, error) {
	t := time.Now()
	ks, err := x.s.ListEABKeys(ctx)
	x.m.done(opListEABKeys, t, err)
	return ks, err
}

func (x *measured) UpdateEABKey(ctx context.Context, kid string, fn func(*acme.EABKey) error) (*acme.EABKey, error) {
	t := time.Now()
	k, err := x.s.UpdateEABKey(ctx, kid, fn)
	x.m.done(opUpdateEABKey, t, err)
	return k, err
}

// Limit implements storage.Limiter, counting refusals by limit name.
func (x *measured) Limit(ctx context.Context, now time.Time, checks []storage.LimitCheck) (storage.LimitDecision, error) {
	t := time.Now()
	d, err := x.l.Limit(ctx, now, checks)
	x.m.done(opLimit, t, err)
	if err == nil && !d.Allowed {
		x.m.refusals.WithLabelValues(d.Refused).Inc()
	}
	return d, err
}

// refused counts a create's rate-limit refusal (storage.Limiting).
func (s *storeMetrics) refused(err error) {
	var le *storage.LimitError
	if errors.As(err, &le) {
		s.refusals.WithLabelValues(le.Name).Inc()
	}
}
