package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

const (
	// replicaRefresh is how often the replica count is asked for again.
	replicaRefresh = time.Second
	// replicaHold is how many refreshes a count is remembered: a write
	// waits for the most replicas seen in that time. Right after a switch
	// the sentinels list the new master's replicas as disconnected until
	// they reach them, and the old master still takes writes that only
	// its last replica confirms; a count that dropped at once would let
	// those through. A replica that really left stops counting after
	// Sentinel's down-after-milliseconds and then this many seconds.
	replicaHold = 5
)

// replicaCount follows how many healthy replicas the master has: one
// master (key "") for standalone and Sentinel, one per shard (keyed by
// node address) on a Cluster. It asks on its own clients, so its traffic
// neither takes connections from requests nor shows in their hooks.
type replicaCount struct {
	probe   func(context.Context) (map[string]int, error)
	closers []func() error

	mu   sync.Mutex
	seen []map[string]int // the last replicaHold counts, oldest first

	wake   chan struct{} // a sentinel announced +switch-master
	cancel context.CancelFunc
	done   chan struct{}
}

// newReplicaCount counts once, so the first write already knows, then
// keeps counting until close.
func newReplicaCount(ctx context.Context, opts *goredis.UniversalOptions) (*replicaCount, error) {
	r := &replicaCount{wake: make(chan struct{}, 1), done: make(chan struct{})}
	switch {
	case opts.IsClusterMode:
		o := opts.Cluster()
		o.PoolSize, o.ClientName = 2, "acmed-replicas"
		c := goredis.NewClusterClient(o)
		r.closers = append(r.closers, c.Close)
		r.probe = func(ctx context.Context) (map[string]int, error) { return clusterReplicas(ctx, c) }
	case opts.MasterName != "":
		r.probe = r.sentinelProbe(opts)
	default:
		o := opts.Simple()
		o.PoolSize, o.ClientName = 1, "acmed-replicas"
		c := goredis.NewClient(o)
		r.closers = append(r.closers, c.Close)
		r.probe = func(ctx context.Context) (map[string]int, error) {
			n, err := onlineReplicas(ctx, c)
			return map[string]int{"": n}, err
		}
	}
	if err := r.refresh(ctx); err != nil {
		_ = r.close()
		return nil, fmt.Errorf("count replicas: %w", err)
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go r.run(ctx)
	return r, nil
}

// required is the most replicas seen for master addr lately.
func (r *replicaCount) required(addr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, m := range r.seen {
		n = max(n, m[addr])
	}
	return n
}

func (r *replicaCount) run(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(replicaRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.wake:
		}
		// A failed count keeps the last ones: a sentinel that does not
		// answer must not lower what writes wait for.
		_ = r.refresh(ctx)
	}
}

func (r *replicaCount) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*replicaRefresh)
	defer cancel()
	m, err := r.probe(ctx)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, m)
	if len(r.seen) > replicaHold {
		r.seen = r.seen[len(r.seen)-replicaHold:]
	}
	return nil
}

func (r *replicaCount) close() error {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
	var first error
	for _, c := range r.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// sentinelProbe asks the sentinels in turn, the last that answered first,
// for the master's replicas (SENTINEL REPLICAS) and counts the healthy
// ones. It subscribes to +switch-master on every sentinel to
// count again at once after a failover.
func (r *replicaCount) sentinelProbe(opts *goredis.UniversalOptions) func(context.Context) (map[string]int, error) {
	var clients []*goredis.SentinelClient
	for _, addr := range opts.Addrs {
		c := goredis.NewSentinelClient(&goredis.Options{
			Addr:                     addr,
			Username:                 opts.SentinelUsername,
			Password:                 opts.SentinelPassword,
			TLSConfig:                opts.TLSConfig,
			DialTimeout:              opts.DialTimeout,
			ReadTimeout:              opts.ReadTimeout,
			WriteTimeout:             opts.WriteTimeout,
			MaxRetries:               -1,
			DialerRetries:            1,
			PoolSize:                 1,
			ClientName:               "acmed-replicas",
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
		})
		clients = append(clients, c)
		ps := c.Subscribe(context.Background(), "+switch-master")
		r.closers = append(r.closers, ps.Close, c.Close)
		go func() {
			for range ps.Channel() {
				select {
				case r.wake <- struct{}{}:
				default:
				}
			}
		}()
	}
	var mu sync.Mutex
	first := 0
	return func(ctx context.Context) (map[string]int, error) {
		mu.Lock()
		defer mu.Unlock()
		var errs []string
		for i := range clients {
			j := (first + i) % len(clients)
			reps, err := clients[j].Replicas(ctx, opts.MasterName).Result()
			if err != nil {
				errs = append(errs, fmt.Sprintf("sentinel %s: %v", opts.Addrs[j], err))
				continue
			}
			first = j
			n := 0
			for _, rep := range reps {
				if healthy(rep) {
					n++
				}
			}
			return map[string]int{"": n}, nil
		}
		return nil, fmt.Errorf("no sentinel answered: %s", strings.Join(errs, "; "))
	}
}

// healthy reports whether Sentinel's view of a replica shows it able to
// confirm writes: up and reachable (flags without s_down, o_down,
// disconnected), and replicating (it reports the replica role, its link
// to the master is up). A replica that is not replicating cannot answer a
// WAIT; Sentinel does not promote it either while the others are fine.
// After a failover the old master is listed among the new one's replicas
// at once, but turns replica only some seconds later (Sentinel waits 8s
// for news before it reconfigures an instance): counting it then would
// fail every write until then.
func healthy(rep map[string]string) bool {
	for f := range strings.SplitSeq(rep["flags"], ",") {
		switch f {
		case "s_down", "o_down", "disconnected":
			return false
		}
	}
	if r, ok := rep["role-reported"]; ok && r != "slave" {
		return false
	}
	if l, ok := rep["master-link-status"]; ok && l != "ok" {
		return false
	}
	return true
}

// onlineReplicas counts the replicas the server lists online in INFO
// replication (slaveN:ip=…,port=…,state=online,…).
func onlineReplicas(ctx context.Context, c *goredis.Client) (int, error) {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && strings.HasPrefix(k, "slave") && strings.Contains(","+v+",", ",state=online,") {
			n++
		}
	}
	return n, nil
}

// clusterReplicas counts each master's online replicas, by its address.
func clusterReplicas(ctx context.Context, c *goredis.ClusterClient) (map[string]int, error) {
	var mu sync.Mutex
	out := map[string]int{}
	err := c.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
		n, err := onlineReplicas(ctx, node)
		if err != nil {
			return fmt.Errorf("%s: %w", node.Options().Addr, err)
		}
		mu.Lock()
		out[node.Options().Addr] = n
		mu.Unlock()
		return nil
	})
	return out, err
}
