package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteUnmatched labels requests no route matched (404s, 405s): their raw
// paths are the client's to choose, so never a label.
const RouteUnmatched = "unmatched"

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	writers  sync.Pool
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Subsystem: "http", Name: "requests_total",
			Help: "ACME HTTP requests answered, by route (the path template, e.g. /acme/order/{id}) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to answer an ACME HTTP request, by route: from the handler's start to its return, a finalize's wait for its issuance included.",
			// 1ms to 10s: a nonce takes well under a millisecond, a
			// finalize waits up to 5s for its issuance.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	h.writers.New = func() any { return new(statusWriter) }
	reg.MustRegister(h.requests, h.duration)
	return h
}

// Instrument wraps the handler of one route, named by its template. The
// route's histogram and its counters by status code are resolved here and
// on a code's first use, so that a request costs a clock read, an
// observation and an increment, and no allocation (the status-recording
// writer comes from a pool).
func (m *Metrics) Instrument(route string, next http.Handler) http.Handler {
	r := &routeMetrics{h: m.http, route: route, duration: m.http.duration.WithLabelValues(route), next: next}
	return r
}

type routeMetrics struct {
	h        *httpMetrics
	route    string
	duration prometheus.Observer
	next     http.Handler
	// codes holds the counter of each status code seen, by code.
	codes [600]atomic.Pointer[prometheus.Counter]
}

func (rm *routeMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := rm.h.writers.Get().(*statusWriter)
	sw.ResponseWriter, sw.code = w, 0
	defer func() {
		code := sw.code
		if code == 0 {
			code = http.StatusOK // nothing written: net/http sends 200
		}
		sw.ResponseWriter = nil
		rm.h.writers.Put(sw)
		rm.duration.Observe(time.Since(start).Seconds())
		rm.counter(code).Inc()
	}()
	rm.next.ServeHTTP(sw, r)
}

func (rm *routeMetrics) counter(code int) prometheus.Counter {
	if code < 100 || code >= len(rm.codes) {
		code = 0
	}
	if c := rm.codes[code].Load(); c != nil {
		return *c
	}
	c := rm.h.requests.WithLabelValues(rm.route, strconv.Itoa(code))
	rm.codes[code].Store(&c)
	return c
}

// statusWriter records the status code a handler sends.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 { // 1xx are interim responses
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
