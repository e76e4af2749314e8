package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds both the join and the wait for every node to agree
// that all slots are served.
const clusterTimeout = 30 * time.Second

// Cluster is a three-master Redis Cluster without replicas.
type Cluster struct {
	Nodes []*Server
	Addrs []string
	URL   string // redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3
}

// StartCluster starts three cluster-enabled servers, joins them with
// redis-cli --cluster create and waits until every node reports
// cluster_state:ok with all 16384 slots served and all three nodes known.
// A cluster cannot come from REDIS_URL, so it always needs redis-server.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	bin := need(t, "redis-server", "StartCluster")
	cli := need(t, "redis-cli", "StartCluster")
	c := &Cluster{}
	for range 3 {
		dir := t.TempDir()
		args := append(baseArgs(dir, "redis.log"),
			"--save", "", "--appendonly", "no",
			"--cluster-enabled", "yes",
			// Absolute, because a relative name would depend on when
			// redis applies --dir while it reads its arguments.
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000",
		)
		s := launch(t, bin, dir, nil, args, true)
		c.Nodes = append(c.Nodes, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	c.URL = "redis+cluster://" + strings.Join(c.Addrs, ",")

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	argv := append([]string{"--cluster", "create"}, c.Addrs...)
	argv = append(argv, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, argv...).CombinedOutput(); err != nil {
		logServers(t, c.Nodes...)
		t.Fatalf("redistest: redis-cli %s: %v\n%s", strings.Join(argv, " "), err, out)
	}

	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    "3",
	}
	waitFor(t, clusterTimeout, c.Nodes, func() error {
		for _, n := range c.Nodes {
			text, err := info(n.Addr, "cluster info")
			if err != nil {
				return fmt.Errorf("%s: CLUSTER INFO: %w", n.Addr, err)
			}
			for k, v := range want {
				if got := infoField(text, k); got != v {
					return fmt.Errorf("%s: %s is %q, want %q", n.Addr, k, got, v)
				}
			}
		}
		return nil
	})
	return c
}

// waitFor polls cond until it returns nil, or fails the test with cond's
// last complaint and the logs of servers.
func waitFor(t testing.TB, timeout time.Duration, servers []*Server, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			logServers(t, servers...)
			t.Fatalf("redistest: not ready after %v: %v", timeout, err)
		}
		time.Sleep(pollInterval)
	}
}
