package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

func TestStartPing(t *testing.T) {
	t.Parallel()
	s := Start(t)
	if err := ping(s.Addr); err != nil {
		t.Fatalf("PING %s: %v", s.Addr, err)
	}
}

func TestRestartWithAOFKeepsKey(t *testing.T) {
	t.Parallel()
	s := Start(t, WithAOF())
	if s.Dir == "" || s.PID() == 0 {
		t.Fatalf("WithAOF gave a server that is not its own: %+v", s)
	}
	if err := set(s.Addr, "k", "v"); err != nil {
		t.Fatal(err)
	}
	addr, pid := s.Addr, s.PID()
	s.Kill(t)
	if err := ping(s.Addr); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart(t)
	if s.Addr != addr || s.PID() == pid {
		t.Fatalf("after Restart: %s pid %d, was %s pid %d", s.Addr, s.PID(), addr, pid)
	}
	if got, err := get(s.Addr, "k"); err != nil || got != "v" {
		t.Fatalf("GET k after Kill and Restart = %q, %v; want \"v\"", got, err)
	}
	s.Stop(t)
	s.Restart(t)
	if got, err := get(s.Addr, "k"); err != nil || got != "v" {
		t.Fatalf("GET k after Stop and Restart = %q, %v; want \"v\"", got, err)
	}
}

func TestREDISURL(t *testing.T) {
	// Port 1 on loopback: nothing there, and nothing is sent to it.
	t.Setenv("REDIS_URL", "redis://127.0.0.1:1/3")
	s := Start(t)
	if s.Addr != "127.0.0.1:1" || s.URL != "redis://127.0.0.1:1/3" || s.Dir != "" || s.PID() != 0 {
		t.Fatalf("Start with REDIS_URL = %+v", s)
	}
	// WithAOF must not hand out the shared server: the test will kill it.
	if own := Start(t, WithAOF()); own.Addr == s.Addr || own.Dir == "" {
		t.Fatalf("Start(WithAOF) with REDIS_URL = %+v", own)
	}
}

func TestCluster(t *testing.T) {
	t.Parallel()
	c := StartCluster(t)
	if len(c.Nodes) != 3 || c.URL != "redis+cluster://"+strings.Join(c.Addrs, ",") {
		t.Fatalf("cluster %d nodes, URL %q", len(c.Nodes), c.URL)
	}
	// Through different nodes, so that at least one call follows a MOVED.
	set := cli(t, c.Nodes[0], "-c", "SET", "acmed:key", "v")
	get := cli(t, c.Nodes[1], "-c", "GET", "acmed:key")
	if set != "OK" || get != "v" {
		t.Fatalf("SET = %q, GET = %q", set, get)
	}
	for _, n := range c.Nodes {
		text, err := info(n.Addr, "cluster info")
		if err != nil || infoField(text, "cluster_state") != "ok" {
			t.Fatalf("CLUSTER INFO on %s: %v\n%s", n.Addr, err, text)
		}
	}
}

func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	s := StartSentinel(t)
	if want := "redis+sentinel://" + strings.Join(s.SentinelAddrs, ",") + "/mymaster"; s.URL != want || s.MasterName != "mymaster" {
		t.Fatalf("URL %q, MasterName %q", s.URL, s.MasterName)
	}
	old := s.MasterAddr(t)
	if old != s.Master.Addr {
		t.Fatalf("MasterAddr = %s, want %s", old, s.Master.Addr)
	}
	s.Master.Kill(t)
	if got := s.WaitFailover(t, old); got != s.Replica.Addr {
		t.Fatalf("WaitFailover = %s, want the replica %s", got, s.Replica.Addr)
	}
}

// cli runs redis-cli against s and returns its trimmed output.
func cli(t *testing.T, s *Server, args ...string) string {
	t.Helper()
	host, port, _ := strings.Cut(s.Addr, ":")
	out, err := exec.Command("redis-cli", append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// With two replicas, SENTINEL FAILOVER promotes one of them and leaves the
// old master running as a replica.
func TestSentinelManualFailover(t *testing.T) {
	t.Parallel()
	s := StartSentinel(t, WithReplicas(2))
	if len(s.Replicas) != 2 || s.Replica != s.Replicas[0] {
		t.Fatalf("%d replicas, Replica %v", len(s.Replicas), s.Replica)
	}
	old := s.MasterAddr(t)
	s.Failover(t)
	got := s.WaitFailover(t, old)
	if got != s.Replicas[0].Addr && got != s.Replicas[1].Addr {
		t.Fatalf("WaitFailover = %s, want one of the replicas", got)
	}
	waitFor(t, sentinelTimeout, s.servers(), func() error {
		r, err := role(old)
		if err != nil {
			return err
		}
		if r != "slave" {
			return fmt.Errorf("old master %s has role %s, want slave", old, r)
		}
		return nil
	})
}

func set(addr, key, value string) error {
	_, err := withClient(addr, func(ctx context.Context, c *goredis.Client) (string, error) {
		return c.Set(ctx, key, value, 0).Result()
	})
	return err
}

func get(addr, key string) (string, error) {
	return withClient(addr, func(ctx context.Context, c *goredis.Client) (string, error) {
		return c.Get(ctx, key).Result()
	})
}
