package redistest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// The servers this package starts are spoken to through go-redis, one
// short-lived client (one connection) per call: a readiness poll costs a
// dial, and a server just killed or restarted is never reached through a
// stale pooled connection.

// ioTimeout bounds one call so a wedged server fails the poll instead of
// hanging the test.
const ioTimeout = 2 * time.Second

func clientOptions(addr string) *goredis.Options {
	return &goredis.Options{
		Addr:         addr,
		DialTimeout:  ioTimeout,
		ReadTimeout:  ioTimeout,
		WriteTimeout: ioTimeout,
		// A poll is tried again by its caller: no retries, one dial.
		MaxRetries:    -1,
		DialerRetries: 1,
		PoolSize:      1,
		// RESP2 and no CLIENT SETINFO or maintenance probe: the handshake
		// is the dial alone, as a readiness poll wants.
		Protocol:                 2,
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
}

// withClient runs f with a client of the server at addr, then closes it.
func withClient[T any](addr string, f func(context.Context, *goredis.Client) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c := goredis.NewClient(clientOptions(addr))
	defer c.Close()
	return f(ctx, c)
}

// withSentinel is withClient for a sentinel.
func withSentinel[T any](addr string, f func(context.Context, *goredis.SentinelClient) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ioTimeout)
	defer cancel()
	c := goredis.NewSentinelClient(clientOptions(addr))
	defer c.Close()
	return f(ctx, c)
}

// ping reports whether the server at addr answers PING with PONG.
func ping(addr string) error {
	_, err := withClient(addr, func(ctx context.Context, c *goredis.Client) (struct{}, error) {
		pong, err := c.Ping(ctx).Result()
		if err == nil && pong != "PONG" {
			err = fmt.Errorf("PING answered %q", pong)
		}
		return struct{}{}, err
	})
	return err
}

// info returns one section of INFO, or CLUSTER INFO for section "cluster
// info", as text (see infoField).
func info(addr, section string) (string, error) {
	return withClient(addr, func(ctx context.Context, c *goredis.Client) (string, error) {
		if section == "cluster info" {
			return c.ClusterInfo(ctx).Result()
		}
		return c.Info(ctx, section).Result()
	})
}

// role returns the first field of ROLE: master, slave or sentinel.
func role(addr string) (string, error) {
	return withClient(addr, func(ctx context.Context, c *goredis.Client) (string, error) {
		v, err := c.Do(ctx, "ROLE").Slice()
		if err != nil {
			return "", err
		}
		if len(v) == 0 {
			return "", fmt.Errorf("ROLE answered nothing")
		}
		r, _ := v[0].(string)
		return r, nil
	})
}

// masterAddr asks one sentinel for the master's address.
func masterAddr(sn *Server) (string, error) {
	return withSentinel(sn.Addr, func(ctx context.Context, c *goredis.SentinelClient) (string, error) {
		hp, err := c.GetMasterAddrByName(ctx, masterName).Result()
		if err != nil {
			return "", err
		}
		if len(hp) != 2 {
			return "", fmt.Errorf("get-master-addr-by-name replied %v", hp)
		}
		return net.JoinHostPort(hp[0], hp[1]), nil
	})
}

// infoField returns field's value from an INFO or CLUSTER INFO text.
func infoField(info, field string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), field+":"); ok {
			return v
		}
	}
	return ""
}

// UsedMemory is the used_memory of INFO memory on the server c talks to:
// what a test that bounds store growth compares before and after.
func UsedMemory(t testing.TB, c goredis.UniversalClient) int64 {
	t.Helper()
	info, err := c.Info(t.Context(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no used_memory in INFO memory")
	return 0
}
