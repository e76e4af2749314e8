package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// observer counts the failed HTTP exchanges of every client by status
// and problem type.
type observer struct {
	requests atomic.Int64
	mu       sync.Mutex
	kinds    map[string]int
	first    time.Time
	last     time.Time
	times    []time.Time
}

// perSecond counts failures by whole seconds since t0.
func (o *observer) perSecond(t0 time.Time) map[int]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[int]int{}
	for _, t := range o.times {
		out[int(t.Sub(t0).Seconds())]++
	}
	return out
}

// observed is one client's transport, reporting to obs.
type observed struct {
	next http.RoundTripper
	obs  *observer
}

func (t observed) RoundTrip(req *http.Request) (*http.Response, error) {
	o := t.obs
	o.requests.Add(1)
	res, err := t.next.RoundTrip(req)
	if err != nil {
		o.record("transport error")
		return nil, err
	}
	if res.StatusCode < 400 {
		return res, nil
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	res.Body.Close()
	if err != nil {
		o.record("unreadable body")
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	var p struct{ Type string }
	_ = json.Unmarshal(body, &p)
	kind := fmt.Sprintf("%d %s", res.StatusCode, strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:"))
	if res.StatusCode == http.StatusServiceUnavailable && res.Header.Get("Retry-After") == "" {
		kind += " without Retry-After"
	}
	o.record(kind)
	return res, nil
}

func (o *observer) record(kind string) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kinds == nil {
		o.kinds = map[string]int{}
	}
	o.kinds[kind]++
	o.times = append(o.times, now)
	if o.first.IsZero() {
		o.first = now
	}
	o.last = now
}

// allowed are the failures a client may see around a failover.
func allowedFailure(kind string) bool {
	return kind == "503 serverInternal" || kind == "503 " || kind == "400 badNonce"
}

func (o *observer) summary() (string, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	for k, n := range o.kinds {
		parts = append(parts, fmt.Sprintf("%d × %q", n, k))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", "), int(o.requests.Load())
}

func (o *observer) failed() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.kinds {
		n += c
	}
	return n
}

func (o *observer) unexpected() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, n := range o.kinds {
		if !allowedFailure(k) {
			out[k] = n
		}
	}
	return out
}

func (o *observer) window() (first, last time.Time, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.first, o.last, !o.first.IsZero()
}
