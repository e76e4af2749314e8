package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

const (
	masterName = "mymaster"
	// sentinelTimeout covers discovery (sentinels find each other through
	// hello messages sent every 2s) and a failover (1s to notice, an
	// election, a promotion), with room for a slow CI machine.
	sentinelTimeout = 30 * time.Second
)

// Sentinel is a master with replicas, watched by three sentinels.
type Sentinel struct {
	Master, Replica *Server   // Replica is Replicas[0]
	Replicas        []*Server // as the test started them; a failover changes roles
	Sentinels       []*Server
	MasterName      string // "mymaster"
	SentinelAddrs   []string
	URL             string // redis+sentinel://127.0.0.1:s1,127.0.0.1:s2,127.0.0.1:s3/mymaster
}

// SentinelOption changes what StartSentinel runs.
type SentinelOption func(*sentinelOptions)

type sentinelOptions struct{ replicas int }

// WithReplicas starts n replicas (at least 1) instead of one.
func WithReplicas(n int) SentinelOption {
	return func(o *sentinelOptions) { o.replicas = max(n, 1) }
}

// StartSentinel starts a master, one replica of it (or as many as
// WithReplicas says) and three sentinels with a quorum of two, and waits
// until every sentinel knows the master, every replica and both other
// sentinels, and every replica is in sync.
func StartSentinel(t testing.TB, opts ...SentinelOption) *Sentinel {
	t.Helper()
	o := sentinelOptions{replicas: 1}
	for _, opt := range opts {
		opt(&o)
	}
	bin := need(t, "redis-server", "StartSentinel")
	data := func(dir string) []string {
		return append(baseArgs(dir, "redis.log"), "--save", "", "--appendonly", "no",
			// Redis waits 5s by default for more replicas to share a full
			// sync; there is only one, and the test would wait for it.
			"--repl-diskless-sync-delay", "0")
	}
	dir := t.TempDir()
	master := launch(t, bin, dir, nil, data(dir), false)
	host, port, _ := net.SplitHostPort(master.Addr)
	s := &Sentinel{Master: master, MasterName: masterName}
	for range o.replicas {
		dir := t.TempDir()
		s.Replicas = append(s.Replicas, launch(t, bin, dir, nil, append(data(dir), "--replicaof", host, port), false))
	}
	s.Replica = s.Replicas[0]
	// Before the sentinels start: a sentinel learns of replicas from the
	// master's INFO, which it asks for on connecting and then only every
	// 10s, so a replica that is not yet attached would cost that much.
	waitFor(t, sentinelTimeout, append([]*Server{master}, s.Replicas...), s.linksUp)

	for range 3 {
		dir := t.TempDir()
		conf := filepath.Join(dir, "sentinel.conf")
		// A file, not arguments: sentinel insists on one it can rewrite.
		text := strings.Join([]string{
			"sentinel resolve-hostnames no",
			fmt.Sprintf("sentinel monitor %s %s %s 2", masterName, host, port),
			"sentinel down-after-milliseconds " + masterName + " 1000",
			"sentinel failover-timeout " + masterName + " 5000",
			"sentinel parallel-syncs " + masterName + " 1",
		}, "\n") + "\n"
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		sn := launch(t, bin, dir, []string{conf, "--sentinel"}, baseArgs(dir, "sentinel.log"), false)
		s.Sentinels = append(s.Sentinels, sn)
		s.SentinelAddrs = append(s.SentinelAddrs, sn.Addr)
	}
	s.URL = "redis+sentinel://" + strings.Join(s.SentinelAddrs, ",") + "/" + masterName

	waitFor(t, sentinelTimeout, s.servers(), func() error {
		for _, sn := range s.Sentinels {
			if err := s.sees(sn); err != nil {
				return fmt.Errorf("sentinel %s: %w", sn.Addr, err)
			}
		}
		return s.linksUp()
	})
	return s
}

// servers is every process of the group, for logs.
func (s *Sentinel) servers() []*Server {
	return append(append([]*Server{s.Master}, s.Replicas...), s.Sentinels...)
}

func (s *Sentinel) linksUp() error {
	for _, r := range s.Replicas {
		if err := linkUp(r); err != nil {
			return err
		}
	}
	return nil
}

// sees checks that sentinel sn has the whole group in view.
func (s *Sentinel) sees(sn *Server) error {
	addr, err := masterAddr(sn)
	if err != nil {
		return err
	}
	if addr != s.Master.Addr {
		return fmt.Errorf("master is %s, want %s", addr, s.Master.Addr)
	}
	replicas, err := withSentinel(sn.Addr, func(ctx context.Context, c *goredis.SentinelClient) ([]map[string]string, error) {
		return c.Replicas(ctx, masterName).Result()
	})
	if err != nil {
		return err
	}
	if len(replicas) != len(s.Replicas) {
		return fmt.Errorf("sees %d replicas, want %d", len(replicas), len(s.Replicas))
	}
	want := map[string]bool{}
	for _, r := range s.Replicas {
		want[r.Addr] = true
	}
	for _, r := range replicas {
		if got := net.JoinHostPort(r["ip"], r["port"]); !want[got] || r["flags"] != "slave" {
			return fmt.Errorf("replica %s has flags %q, want one of %v with flags \"slave\"", got, r["flags"], want)
		}
	}
	others, err := withSentinel(sn.Addr, func(ctx context.Context, c *goredis.SentinelClient) ([]map[string]string, error) {
		return c.Sentinels(ctx, masterName).Result()
	})
	if err != nil {
		return err
	}
	if len(others) != 2 {
		return fmt.Errorf("sees %d other sentinels, want 2", len(others))
	}
	return nil
}

// MasterAddr asks the sentinels, first that answers, for the current master.
func (s *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	var errs []error
	for _, sn := range s.Sentinels {
		addr, err := masterAddr(sn)
		if err == nil {
			return addr
		}
		errs = append(errs, fmt.Errorf("%s: %w", sn.Addr, err))
	}
	t.Fatalf("redistest: no sentinel names the master: %v", errors.Join(errs...))
	return ""
}

// WaitFailover polls until every sentinel that answers (at least a quorum
// of two: the test may have killed one) names the same master other than
// old, and that server says it is a master; it returns that address.
func (s *Sentinel) WaitFailover(t testing.TB, old string) string {
	t.Helper()
	var addr string
	waitFor(t, sentinelTimeout, s.servers(), func() error {
		seen := map[string]int{}
		answered := 0
		for _, sn := range s.Sentinels {
			if a, err := masterAddr(sn); err == nil {
				seen[a]++
				answered++
				addr = a
			}
		}
		if answered < 2 || len(seen) != 1 || addr == old {
			return fmt.Errorf("sentinels name %v as master, want one other than %s", seen, old)
		}
		r, err := role(addr)
		if err != nil {
			return fmt.Errorf("ROLE on %s: %w", addr, err)
		}
		if r != "master" {
			return fmt.Errorf("%s has role %s, want master", addr, r)
		}
		return nil
	})
	return addr
}

// Failover has a sentinel fail the master over (SENTINEL FAILOVER), as an
// operator does before maintenance: the old master stays up and becomes a
// replica. It returns once the sentinel has taken the order, without
// waiting for the switch (see WaitFailover).
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	var errs []error
	for _, sn := range s.Sentinels {
		_, err := withSentinel(sn.Addr, func(ctx context.Context, c *goredis.SentinelClient) (string, error) {
			return c.Failover(ctx, masterName).Result()
		})
		if err == nil {
			return
		}
		errs = append(errs, fmt.Errorf("%s: %w", sn.Addr, err))
	}
	t.Fatalf("redistest: SENTINEL FAILOVER: %v", errors.Join(errs...))
}

// linkUp checks that a replica is attached to its master and in sync.
func linkUp(replica *Server) error {
	text, err := info(replica.Addr, "replication")
	if err != nil {
		return err
	}
	if st := infoField(text, "master_link_status"); st != "up" {
		return fmt.Errorf("replica %s: master_link_status is %q", replica.Addr, st)
	}
	return nil
}
