package main

import (
	"encoding/json"
	"io"
	"math"
	"slices"
	"time"
)

// report is the one JSON line printed at the end. Per-issuance figures
// divide by the issuances attempted (succeeded or failed), since failed
// ones cost requests and CPU too; when all succeed that is -n.
type report struct {
	OK                   int      `json:"ok"`
	Failures             int      `json:"failures"`
	Errors               []string `json:"errors"`
	IssuancesPerSec      float64  `json:"issuances_per_sec"`
	P50ms                float64  `json:"p50_ms"`
	P90ms                float64  `json:"p90_ms"`
	P99ms                float64  `json:"p99_ms"`
	RequestsPerIssuance  float64  `json:"http_requests_per_issuance"`
	Concurrency          int      `json:"concurrency"`
	Challenge            string   `json:"challenge"`
	ServerCPUPerIssuance *float64 `json:"server_cpu_seconds_per_issuance,omitempty"`
	ServerPeakRSSMB      *float64 `json:"server_peak_rss_mb,omitempty"`
}

func (r *result) report(cfg *config) report {
	attempts := r.ok + r.failed
	rep := report{
		OK:          r.ok,
		Failures:    cfg.n - r.ok,
		Errors:      r.errors,
		Concurrency: cfg.c,
		Challenge:   cfg.challenge,
	}
	if rep.Errors == nil {
		rep.Errors = []string{}
	}
	if r.elapsed > 0 {
		rep.IssuancesPerSec = round(float64(r.ok)/r.elapsed.Seconds(), 2)
	}
	lat := slices.Clone(r.latencies)
	slices.Sort(lat)
	rep.P50ms = ms(percentile(lat, 50))
	rep.P90ms = ms(percentile(lat, 90))
	rep.P99ms = ms(percentile(lat, 99))
	if attempts > 0 {
		rep.RequestsPerIssuance = round(float64(r.requests)/float64(attempts), 2)
	}
	if r.server != nil && attempts > 0 {
		cpu := round(r.server.cpuSeconds/float64(attempts), 6)
		rss := round(r.server.peakRSSMB, 1)
		rep.ServerCPUPerIssuance, rep.ServerPeakRSSMB = &cpu, &rss
	}
	return rep
}

// percentile is the nearest-rank percentile of sorted; 0 for none.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(p) / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}

func ms(d time.Duration) float64 {
	return round(float64(d)/float64(time.Millisecond), 1)
}

func round(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}

// writeReport prints rep as one line; json.Encoder ends it with a newline.
func writeReport(w io.Writer, rep report) error {
	return json.NewEncoder(w).Encode(rep)
}
