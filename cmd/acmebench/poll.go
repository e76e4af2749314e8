package main

import (
	"context"
	"fmt"
	"time"
)

// pollTimeout bounds one wait for an authorization or order, so that a
// resource the server never finishes fails its issuance instead of holding
// a worker until -timeout.
const pollTimeout = time.Minute

// poll calls get every interval until settled says the resource is done,
// pollTimeout passes or ctx ends. It does not honour Retry-After: the
// point is to see how soon the server is done, not how long it asks
// clients to wait.
func poll[T any](ctx context.Context, interval time.Duration, get func(context.Context) (T, error), settled func(T) bool) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	var last T
	maxPolls := int(pollTimeout/interval) + 1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for range maxPolls {
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("not done when polling stopped: %w", ctx.Err())
		case <-timer.C:
		}
		v, err := get(ctx)
		if err != nil {
			return v, err
		}
		if settled(v) {
			return v, nil
		}
		last = v
		timer.Reset(interval)
	}
	return last, fmt.Errorf("not done after %d polls", maxPolls)
}
