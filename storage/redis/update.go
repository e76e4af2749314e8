package redis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/record"
)

// maxTries bounds the compare-and-set loop. Each lost race means another
// writer won, so the store as a whole made progress; twenty in a row means
// a hot key, and the caller is better told than kept spinning: that is
// storage.ErrUnavailable (503 + Retry-After), since trying again later is
// the cure, and not ErrConflict, which callers read as a taken key.
const maxTries = 20

// resource names one kind of record (storage/record).
type resource[T any] struct {
	name string // for errors
	key  func(id string) string
	id   func(*T) string
}

// casPlan returns the plan that writes next (the encoding of cur) if the
// key still holds raw, the bytes cur was decoded from: a compare, a set,
// and whatever the resource keeps in step with it.
type casPlan[T any] func(ctx context.Context, raw []byte, cur *T, next []byte) (plan, error)

func get[T any](ctx context.Context, s *Store, r resource[T], id string) (*T, error) {
	raw, err := s.rdb.Get(ctx, r.key(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, notFound(r.name, id)
	}
	if err != nil {
		return nil, fail(ctx, "get "+r.name, err)
	}
	return decode(r, id, raw)
}

func decode[T any](r resource[T], id string, raw []byte) (*T, error) {
	v := new(T)
	if err := record.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("redis: decode %s %q: %w", r.name, id, err)
	}
	return v, nil
}

func encode[T any](r resource[T], v *T) ([]byte, error) {
	raw, err := record.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("redis: encode %s %q: %w", r.name, r.id(v), err)
	}
	return raw, nil
}

// update is the compare-and-set loop behind every UpdateX (DESIGN.md
// decision 2): read, let fn change a fresh copy, and have a script write it
// only if the key still holds the bytes read; else read again. An fn error
// comes back unchanged with nothing written. An fn that changes nothing
// costs no write. A From option stands in for the first read: our encoding
// is deterministic, so the copy a caller holds encodes to the bytes stored
// unless someone changed them since, and then the compare fails and the
// loop reads. Queue and Finishing ride in the write's script. A record an
// earlier acmed stored as JSON stays so until an update changes it (a
// copy held of one never matches, and costs a reread).
//
// A job and the write that moves its resource to processing are one
// script where they share a slot: always on a single server or Sentinel.
// On a Cluster the job stream lies in another slot, so the job is queued
// first (queueAhead) and the write follows: a replica dying in between
// leaves a job whose resource is not processing, which its handler
// finishes doing nothing once it is reclaimed; never a resource
// processing with no job (DESIGN.md decision 4). An update that then
// writes nothing (fn refuses on a retry, the record is gone, races lost)
// finishes that job itself; one whose write failed with an unknown
// outcome leaves it to be reclaimed, as the write may have landed.
func update[T any](ctx context.Context, s *Store, r resource[T], id string, fn func(*T) error, opts storage.Options, write casPlan[T]) (*T, error) {
	key := r.key(id)
	var raw []byte
	if from, ok := opts.From.(*T); ok && from != nil && r.id(from) == id {
		var err error
		if raw, err = encode(r, from); err != nil {
			return nil, err
		}
	}
	var job []byte
	stream := 0 // of the job, if any
	if opts.Queue != nil {
		var err error
		if job, err = json.Marshal(opts.Queue); err != nil {
			return nil, fmt.Errorf("redis: encode job: %w", err)
		}
		stream = jobStream(*opts.Queue)
	}
	var finishKey, finishEntry string
	if opts.Finish != nil && opts.Finish.ID != "" {
		var err error
		if finishKey, finishEntry, err = claimEntry(opts.Finish.ID); err != nil {
			return nil, err
		}
	}
	// ahead is the claim of a job queued before the write; keepAhead says
	// it must stay queued (the write stood, or may have).
	var ahead storage.Claim
	keepAhead := false
	defer func() {
		if ahead.ID != "" && !keepAhead {
			_ = s.Finish(context.WithoutCancel(ctx), ahead) // else reclaimed, and does nothing
		}
	}()
	for range maxTries {
		if raw == nil {
			var err error
			raw, err = s.rdb.Get(ctx, key).Bytes()
			if errors.Is(err, goredis.Nil) {
				return nil, notFound(r.name, id)
			}
			if err != nil {
				return nil, fail(ctx, "get "+r.name, err)
			}
		}
		cur, err := decode(r, id, raw)
		if err != nil {
			return nil, err
		}
		was, err := record.Baseline(raw, cur)
		if err != nil {
			return nil, fmt.Errorf("redis: encode %s %q: %w", r.name, id, err)
		}
		if err := fn(cur); err != nil {
			return nil, err
		}
		if r.id(cur) != id {
			return nil, fmt.Errorf("redis: update %s %q: fn changed its ID to %q", r.name, id, r.id(cur))
		}
		next, err := encode(r, cur)
		if err != nil {
			return nil, err
		}
		if bytes.Equal(next, was) {
			if opts.Finish != nil {
				if err := s.Finish(ctx, *opts.Finish); err != nil {
					return nil, err
				}
			}
			return cur, nil
		}
		p, err := write(ctx, raw, cur, next)
		if err != nil {
			return nil, err
		}
		switch {
		case job == nil:
		case s.oneSlot(key, jobStreamKey(stream)):
			p.enqueue(jobStreamKey(stream), s.consumer, job)
		case ahead.ID == "":
			if ahead, err = s.queueAhead(ctx, *opts.Queue, stream, job); err != nil {
				return nil, err
			}
		}
		if finishKey != "" {
			p.ack(finishKey, finishEntry)
		}
		for _, c := range opts.Spend {
			if !c.Limit.Off() {
				p.spend(c, opts.SpendAt) // rides in the write's script where it shares its slot
			}
		}
		res, err := s.run(ctx, "update "+r.name, p)
		switch {
		case err != nil:
			keepAhead = true
			return nil, err
		case res.res == casWritten:
			keepAhead = true
			if opts.Claimed != nil && opts.Queue != nil {
				claimed := ahead
				if claimed.ID == "" {
					claimed = storage.Claim{Job: *opts.Queue, ID: claimID(stream, res.claimed)}
				}
				*opts.Claimed = claimed
			}
			return cur, nil
		case res.res == casGone:
			return nil, notFound(r.name, id)
		case res.res == casTaken:
			return nil, conflict("certificate of "+r.name, id)
		case res.res == casChanged:
			raw = nil // changed since it was read: read again
		default:
			return nil, fmt.Errorf("redis: update %s %q: unexpected script result %d", r.name, id, res.res)
		}
	}
	return nil, fmt.Errorf("redis: update %s %q: %w: lost %d races in a row", r.name, id, storage.ErrUnavailable, maxTries)
}

// queueAhead queues job (j encoded) in a script of its own, claimed by
// this replica, for a write that follows in another slot.
func (s *Store) queueAhead(ctx context.Context, j storage.Job, stream int, job []byte) (storage.Claim, error) {
	var p plan
	p.enqueue(jobStreamKey(stream), s.consumer, job)
	res, err := s.apply(ctx, "queue job", p)
	if err != nil {
		return storage.Claim{}, err
	}
	return storage.Claim{Job: j, ID: claimID(stream, res.claimed)}, nil
}

// runCAS runs a compare-and-set script and reads its result; the write
// waits for replicas (Store.durably).
func runCAS(ctx context.Context, s *Store, script *goredis.Script, what string, keys []string, args ...any) (int64, error) {
	res, err := s.evalDurably(ctx, script, keys, args...).Int64()
	if err != nil {
		return 0, fail(ctx, what, err)
	}
	return res, nil
}
