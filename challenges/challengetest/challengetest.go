// Package challengetest runs the real network peers that challenge
// validation talks to, on loopback, for tests: an authoritative DNS server
// and an http-01 responder.
package challengetest

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DNS is an authoritative DNS server on 127.0.0.1 that answers A 127.0.0.1
// for every name, except names it was told do not exist.
type DNS struct {
	Addr string // host:port, for --resolver

	mu      sync.Mutex
	missing map[string]bool
}

// StartDNS starts a DNS server over UDP and TCP on one loopback port and
// stops it when the test ends.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	d := &DNS{missing: map[string]bool{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.Addr = pc.LocalAddr().String()
	ln, err := net.Listen("tcp", d.Addr)
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: d}
	tcp := &dns.Server{Listener: ln, Handler: d}
	for _, s := range []*dns.Server{udp, tcp} {
		started := make(chan struct{})
		s.NotifyStartedFunc = func() { close(started) }
		go func() { _ = s.ActivateAndServe() }()
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("DNS server did not start")
		}
		t.Cleanup(func() { _ = s.Shutdown() })
	}
	return d
}

// Remove makes name answer NXDOMAIN.
func (d *DNS) Remove(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.missing[dns.Fqdn(strings.ToLower(name))] = true
}

// ServeDNS implements dns.Handler.
func (d *DNS) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) == 1 {
		q := req.Question[0]
		d.mu.Lock()
		missing := d.missing[strings.ToLower(q.Name)]
		d.mu.Unlock()
		switch {
		case missing:
			m.Rcode = dns.RcodeNameError
		case q.Qtype == dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	_ = w.WriteMsg(m)
}

// HTTP01 answers http-01 challenges on a loopback port with the key
// authorizations it was given.
type HTTP01 struct {
	Port int

	mu     sync.Mutex
	tokens map[string]string
	hits   map[string]int
}

// StartHTTP01 starts the responder on 127.0.0.1 and stops it when the test
// ends.
func StartHTTP01(t testing.TB) *HTTP01 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &HTTP01{Port: ln.Addr().(*net.TCPAddr).Port, tokens: map[string]string{}, hits: map[string]int{}}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return h
}

// Set makes the responder answer token with keyAuth.
func (h *HTTP01) Set(token, keyAuth string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.tokens[token] = keyAuth
}

func (h *HTTP01) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, "/.well-known/acme-challenge/")
	h.mu.Lock()
	keyAuth, found := h.tokens[token]
	h.hits[token]++
	h.mu.Unlock()
	if !ok || !found {
		http.NotFound(w, r)
		return
	}
	_, _ = w.Write([]byte(keyAuth))
}

// Hits reports how many requests asked for token.
func (h *HTTP01) Hits(token string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[token]
}
