package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxErrors is how many distinct error messages the report keeps.
const maxErrors = 5

// result is what the timed part of a run measured.
type result struct {
	ok, failed int
	latencies  []time.Duration // of successful issuances
	errors     []string        // the first maxErrors distinct ones
	elapsed    time.Duration
	requests   int64        // HTTP requests sent while timed
	server     *serverUsage // nil without -server-pid or when unreadable
}

type serverUsage struct {
	cpuSeconds float64
	peakRSSMB  float64
}

// collector gathers outcomes from the workers.
type collector struct {
	mu sync.Mutex
	r  result
}

// add records one issuance for name. The name is taken out of an error's
// message, so that the same failure for many names is one distinct error.
func (c *collector) add(name string, d time.Duration, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.r.ok++
		c.r.latencies = append(c.r.latencies, d)
		return
	}
	c.r.failed++
	c.noteError(strings.ReplaceAll(oneLine(err), name, "NAME"))
}

// noteError keeps msg if it is new and there is room; c.mu is held.
func (c *collector) noteError(msg string) {
	if len(c.r.errors) < maxErrors && !slices.Contains(c.r.errors, msg) {
		c.r.errors = append(c.r.errors, msg)
	}
}

func (c *collector) counts() (ok, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.r.ok, c.r.failed
}

// runTimed issues cfg.n certificates with the registered workers and
// measures it. Workers take the next issuance number until all are taken
// or ctx ends; issuances never started then count as failures.
func runTimed(ctx context.Context, cfg *config, workers []*worker, resp *responders, counter *countingTransport, stderr io.Writer) (*result, error) {
	runID, err := newRunID()
	if err != nil {
		return nil, err
	}
	col := &collector{}
	var before serverStats
	watchServer := cfg.serverPID > 0
	if watchServer {
		if before, err = readServerStats(cfg.serverPID); err != nil {
			fmt.Fprintf(stderr, "acmebench: -server-pid %d: %s; no server figures\n", cfg.serverPID, oneLine(err))
			watchServer = false
		}
	}
	requestsBefore := counter.requests.Load()
	start := time.Now()
	stopProgress := startProgress(ctx, stderr, col, start)

	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for range cfg.n {
				i := next.Add(1) - 1
				if i >= int64(cfg.n) || ctx.Err() != nil {
					return
				}
				// Unique per run, so no authorization is ever reused.
				name := fmt.Sprintf("%s-%d.%s", runID, i, cfg.suffix)
				t0 := time.Now()
				err := w.issue(ctx, name, resp)
				col.add(name, time.Since(t0), err)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	requests := counter.requests.Load() - requestsBefore
	stopProgress()

	col.mu.Lock()
	if notStarted := cfg.n - col.r.ok - col.r.failed; notStarted > 0 {
		why := "interrupted"
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			why = fmt.Sprintf("-timeout %v reached", cfg.timeout)
		}
		col.noteError(fmt.Sprintf("%s with %d issuances not started", why, notStarted))
	}
	r := col.r
	col.mu.Unlock()
	r.elapsed, r.requests = elapsed, requests
	if watchServer {
		after, err := readServerStats(cfg.serverPID)
		if err != nil {
			fmt.Fprintf(stderr, "acmebench: -server-pid %d: %s; no server figures\n", cfg.serverPID, oneLine(err))
		} else {
			r.server = &serverUsage{
				cpuSeconds: float64(after.cpuTicks-before.cpuTicks) / clockTicksPerSecond,
				peakRSSMB:  float64(after.peakRSSkB) / 1024,
			}
		}
	}
	return &r, nil
}

// newRunID keeps names of different runs apart, so that rerunning
// against the same server never meets an authorization from before.
func newRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// startProgress prints a line to w about every second until the returned
// function is called (which prints a last one) or ctx ends.
func startProgress(ctx context.Context, w io.Writer, col *collector, start time.Time) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	line := func(now time.Time) {
		ok, failed := col.counts()
		el := now.Sub(start).Seconds()
		fmt.Fprintf(w, "%.1fs  ok=%d fail=%d  %.1f/s\n", el, ok, failed, float64(ok)/max(el, 1e-9))
	}
	go func() {
		defer close(exited)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				line(now)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		line(time.Now())
	}
}
