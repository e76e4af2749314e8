package challengetest

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

const http01Prefix = "/.well-known/acme-challenge/"

// HTTP01 answers http-01 challenges with the key authorizations it was
// given, and counts the requests for each token.
type HTTP01 struct {
	Addr string // host:port it listens on
	Port int

	srv *http.Server

	mu     sync.Mutex
	tokens map[string]string
	hits   map[string]int
}

// ListenHTTP01 starts the responder on addr.
func ListenHTTP01(addr string) (*HTTP01, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	h := &HTTP01{
		Addr:   ln.Addr().String(),
		Port:   ln.Addr().(*net.TCPAddr).Port,
		tokens: map[string]string{},
		hits:   map[string]int{},
	}
	h.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ioTimeout,
		ReadTimeout:       ioTimeout,
		WriteTimeout:      ioTimeout,
		IdleTimeout:       ioTimeout,
	}
	go func() { _ = h.srv.Serve(ln) }()
	return h, nil
}

// StartHTTP01 starts the responder on 127.0.0.1 and stops it when the test
// ends.
func StartHTTP01(t testing.TB) *HTTP01 {
	t.Helper()
	h, err := ListenHTTP01("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// Close stops the responder, letting requests in flight finish for a while.
func (h *HTTP01) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		return h.srv.Close()
	}
	return nil
}

// Set makes the responder answer token with keyAuth.
func (h *HTTP01) Set(token, keyAuth string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[token] = keyAuth
}

// Delete makes the responder answer 404 for token.
func (h *HTTP01) Delete(token string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.tokens, token)
}

// Hits reports how many requests asked for token, answered or not: a test
// can tell that validation reached the responder, and how often.
func (h *HTTP01) Hits(token string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[token]
}

// ServeHTTP implements http.Handler.
func (h *HTTP01) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, http01Prefix)
	if !ok || token == "" || strings.Contains(token, "/") {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	keyAuth, found := h.tokens[token]
	h.hits[token]++
	h.mu.Unlock()
	if !found {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write([]byte(keyAuth))
}
