package redis

import (
	"context"
	"net"
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// fenceChannel is published to, with no subscriber, to give a read
// pipeline a place in the replication stream.
const fenceChannel = "acmed:fence"

// fence makes reads wait for the replicas too: a client must not be
// shown what a failover may take back. A write whose WAIT fell short is
// still on the master, and in the second or so after a promotion, before
// acmed follows it, the old master serves reads of such writes: a
// certificate downloaded then would vanish. So every read pipeline gets
// PUBLISH (replicated, so it moves the connection's replication offset
// past everything the reads saw: Redis 7 runs the commands of one
// connection in order) and WAIT, still in one round trip; a single read
// command becomes such a pipeline. Too few replicas is errReplicas, set
// on every command, as for writes.
//
// Only standalone and Sentinel: on a Cluster, PUBLISH goes over the
// cluster bus and not the replication stream, so reads are not fenced
// there (see the package documentation).
type fence struct{ s *Store }

func (f fence) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		return next(ctx, network, addr)
	}
}

// fencedRead reports whether name is one of the single commands the
// store reads with.
func fencedRead(name string) bool {
	switch strings.ToLower(name) {
	case "get", "mget", "exists", "zrange":
		return true
	}
	return false
}

func (f fence) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		if !fencedRead(cmd.Name()) || f.want() == 0 {
			return next(ctx, cmd)
		}
		// Through the pipeline hook below, which fences it.
		_, _ = f.s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
			return p.Process(ctx, cmd)
		})
		return cmd.Err()
	}
}

func (f fence) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		want := f.want()
		if want == 0 || waits(cmds) {
			return next(ctx, cmds) // a write's pipeline has its own WAIT
		}
		if strings.EqualFold(cmds[0].Name(), "multi") {
			return f.afterTx(ctx, next, cmds, want)
		}
		wait := goredis.NewIntCmd(ctx, "wait", want, f.s.waitTimeout.Milliseconds())
		all := append(append(cmds[:len(cmds):len(cmds)],
			goredis.NewIntCmd(ctx, "publish", fenceChannel, "")), wait)
		err := next(ctx, all)
		if werr := f.s.checkWait(wait, want); werr != nil {
			for _, c := range cmds {
				c.SetErr(werr)
			}
			return werr
		}
		return err
	}
}

// afterTx fences a MULTI/EXEC pipeline, which go-redis reads as a whole
// (nothing may follow EXEC), with PUBLISH and WAIT in a pipeline of their
// own once it has run. Replicas confirm offsets of the one replication
// stream, so a later PUBLISH confirmed on any connection covers the
// transaction, unless the master changed in between, and then the
// transaction is what a failover dropped: a narrow gap, for a rare call
// (ClaimCA, at start).
func (f fence) afterTx(ctx context.Context, next goredis.ProcessPipelineHook, cmds []goredis.Cmder, want int) error {
	if err := next(ctx, cmds); err != nil {
		return err
	}
	var wait *goredis.Cmd
	_, _ = f.s.rdb.Pipelined(ctx, func(p goredis.Pipeliner) error {
		p.Publish(ctx, fenceChannel, "")
		wait = p.Do(ctx, "WAIT", want, f.s.waitTimeout.Milliseconds())
		return nil
	})
	if err := f.s.checkWait(wait, want); err != nil {
		for _, c := range cmds {
			c.SetErr(err)
		}
		return err
	}
	return nil
}

// want is how many replicas a read must wait for: those a write waits
// for, outside a Cluster.
func (f fence) want() int {
	if f.s.cluster {
		return 0
	}
	return f.s.required("")
}

func waits(cmds []goredis.Cmder) bool {
	for _, c := range cmds {
		if strings.EqualFold(c.Name(), "wait") {
			return true
		}
	}
	return false
}
