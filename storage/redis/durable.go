package redis

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Values of Config.MinReplicas besides a positive count.
const (
	// AutoReplicas waits for every healthy replica of the master: as the
	// sentinels list them, or as the master (standalone) or each shard's
	// master (Cluster) reports them online.
	AutoReplicas = 0
	// NoReplicas turns WAIT off: a write is acknowledged once the master
	// has it, and a failover may drop it.
	NoReplicas = -1
)

// defaultWaitTimeout bounds each WAIT. Replicas on a LAN acknowledge
// within a millisecond (WAIT asks them at once with REPLCONF GETACK), so
// a second means a replica is down or far behind: the client is better
// told (503 + Retry-After) than kept waiting. It stays under the reply
// timeout, which would otherwise cut the pipeline off first.
const defaultWaitTimeout = time.Second

// errReplicas is a write the master took but too few replicas confirmed:
// fail turns it into storage.ErrUnavailable. The write may survive or be
// lost in a failover, so the client must not be told it succeeded.
type errReplicas struct {
	got, want int
	timeout   time.Duration
	refused   string // WAIT's error: e.g. the server is a replica now
}

func (e *errReplicas) Error() string {
	if e.refused != "" {
		return fmt.Sprintf("WAIT for %d replicas: %s", e.want, e.refused)
	}
	return fmt.Sprintf("reached %d of %d replicas within %v", e.got, e.want, e.timeout)
}

// checkWait reads a WAIT for want replicas: nil if they confirmed. Its
// errors are errReplicas, even a reply from Redis (a replica refuses
// WAIT), so that fail takes them for ErrUnavailable.
func (s *Store) checkWait(wait goredis.Cmder, want int) error {
	var got int64
	var err error
	switch c := wait.(type) {
	case *goredis.IntCmd:
		got, err = c.Result()
	case *goredis.Cmd:
		got, err = c.Int64()
	}
	var reply goredis.Error
	switch {
	case errors.As(err, &reply):
		return &errReplicas{want: want, refused: reply.Error()}
	case err != nil:
		return err
	case int(got) < want:
		return &errReplicas{got: int(got), want: want, timeout: s.waitTimeout}
	}
	return nil
}

// durably sends the write that write makes, followed by WAIT for as many
// replicas as the store requires, in one pipeline: WAIT counts only the
// writes of its own connection, and a pipeline is one connection (and one
// round trip). With no replicas required the write goes alone, as
// before. Too few replicas within the timeout set errReplicas on the
// write's command, so callers read its result as usual. key routes the
// pipeline on a Cluster: to the master holding key's slot. An error
// before anything was sent is returned, and write is not called.
func (s *Store) durably(ctx context.Context, key string, write func(goredis.Cmdable) goredis.Cmder) error {
	c, want, err := s.waitTarget(ctx, key)
	if err != nil {
		return err
	}
	if want == 0 {
		write(s.rdb)
		return nil
	}
	var (
		cmd  goredis.Cmder
		wait *goredis.Cmd
	)
	// Per-command errors are read from the commands below.
	_, _ = c.Pipelined(ctx, func(p goredis.Pipeliner) error {
		cmd = write(p)
		// Pipeliner has no Wait; the timeout stays under the reply's.
		wait = p.Do(ctx, "WAIT", want, s.waitTimeout.Milliseconds())
		return nil
	})
	if err := cmd.Err(); err != nil {
		if s.cluster && isRedirect(err) {
			// Slots moved; the cluster client learns of it only from a
			// redirect it sees itself, and a node client's is not.
			s.rdb.(*goredis.ClusterClient).ReloadState(ctx)
		}
		return nil
	}
	if err := s.checkWait(wait, want); err != nil {
		cmd.SetErr(err)
	}
	return nil
}

// waitTarget is the client to send a write to key and its WAIT through,
// and how many replicas the WAIT needs.
func (s *Store) waitTarget(ctx context.Context, key string) (goredis.Cmdable, int, error) {
	switch {
	case s.minReplicas == NoReplicas:
		return s.rdb, 0, nil
	case !s.cluster:
		return s.rdb, s.required(""), nil
	}
	node, err := s.rdb.(*goredis.ClusterClient).MasterForKey(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	if s.minReplicas > 0 {
		return node, s.minReplicas, nil
	}
	want := s.required(node.Options().Addr)
	if want == 0 {
		return s.rdb, 0, nil // let the cluster client route, as without WAIT
	}
	return node, want, nil
}

// required is how many replicas a write to master addr ("" outside a
// Cluster) waits for.
func (s *Store) required(addr string) int {
	switch {
	case s.minReplicas == NoReplicas:
		return 0
	case s.minReplicas > 0:
		return s.minReplicas
	}
	return s.replicas.required(addr)
}

// evalDurably runs script like Script.Run (EVALSHA, and EVAL if the
// server does not have the script yet, as after a failover) with WAIT
// after it; see durably.
func (s *Store) evalDurably(ctx context.Context, script *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	key := ""
	if len(keys) > 0 {
		key = keys[0]
	}
	var cmd *goredis.Cmd
	run := func(eval func(goredis.Cmdable) *goredis.Cmd) {
		err := s.durably(ctx, key, func(c goredis.Cmdable) goredis.Cmder {
			cmd = eval(c)
			return cmd
		})
		if err != nil {
			cmd = goredis.NewCmd(ctx)
			cmd.SetErr(err)
		}
	}
	run(func(c goredis.Cmdable) *goredis.Cmd { return script.EvalSha(ctx, c, keys, args...) })
	if err := cmd.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// NOSCRIPT means nothing ran, so nothing is written twice.
		run(func(c goredis.Cmdable) *goredis.Cmd { return script.Eval(ctx, c, keys, args...) })
	}
	return cmd
}

// setNXDurably is SET key value NX [PX ttl] with WAIT; see durably.
func (s *Store) setNXDurably(ctx context.Context, key string, value any, ttl time.Duration) *goredis.BoolCmd {
	var cmd *goredis.BoolCmd
	err := s.durably(ctx, key, func(c goredis.Cmdable) goredis.Cmder {
		cmd = c.SetNX(ctx, key, value, ttl)
		return cmd
	})
	if err != nil {
		cmd = goredis.NewBoolCmd(ctx)
		cmd.SetErr(err)
	}
	return cmd
}

func isRedirect(err error) bool {
	var reply goredis.Error
	if !errors.As(err, &reply) {
		return false
	}
	msg := reply.Error()
	return strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ")
}
