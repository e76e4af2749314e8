package challenges

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

func TestRefuse(t *testing.T) {
	only := func(prefixes ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range prefixes {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	tests := []struct {
		ip      string
		blocked []netip.Prefix // added to the defaults
		allowed []netip.Prefix
		want    string // the refusal; "" when allowed
	}{
		{ip: "169.254.169.254", want: "169.254.169.254 is in a network validation may not connect to (169.254.0.0/16)"},
		{ip: "::ffff:169.254.169.254", want: "169.254.169.254 is in a network validation may not connect to (169.254.0.0/16)"},
		{ip: "64:ff9b::a9fe:a9fe", want: "64:ff9b::a9fe:a9fe is in a network validation may not connect to (169.254.0.0/16, through NAT64 as 169.254.169.254)"},
		{ip: "64:ff9b::a00:1", blocked: only("10.0.0.0/8"), want: "(10.0.0.0/8, through NAT64 as 10.0.0.1)"},
		{ip: "fd00:ec2::254", want: "(fd00:ec2::254/128)"},
		{ip: "100.100.100.200", want: "(100.100.100.200/32)"},
		{ip: "fe80::1", want: "(fe80::/10)"},
		{ip: "0.0.0.0", want: "(0.0.0.0/8)"},
		{ip: "0.1.2.3", want: "(0.0.0.0/8)"},
		{ip: "::", want: "(::/128)"},
		{ip: "224.0.0.1", want: "(224.0.0.0/4)"},
		{ip: "239.255.255.250", want: "(224.0.0.0/4)"},
		{ip: "ff02::1", want: "(ff00::/8)"},
		// An internal PKI's clients live here.
		{ip: "127.0.0.1"},
		{ip: "::1"},
		{ip: "10.1.2.3"},
		{ip: "172.16.0.1"},
		{ip: "192.168.1.1"},
		{ip: "fd00::1"},
		{ip: "192.0.2.1"},
		{ip: "64:ff9b::c000:201"},
		{ip: "127.0.0.2", blocked: only("127.0.0.2/32"), want: "(127.0.0.2/32)"},
		// Blocking more never opens the defaults (it used to replace them).
		{ip: "169.254.169.254", blocked: only("127.0.0.2/32"), want: "(169.254.0.0/16)"},
		{ip: "64:ff9b::a9fe:a9fe", blocked: only("10.0.0.0/8"), want: "through NAT64 as 169.254.169.254"},
		// Allowing another range leaves the metadata address blocked.
		{ip: "169.254.169.254", allowed: only("169.254.10.0/24"), want: "(169.254.0.0/16)"},
		{ip: "64:ff9b::a9fe:a9fe", allowed: only("10.0.0.0/8"), want: "through NAT64 as 169.254.169.254"},
		// Only an explicit allowance opens part of a blocked range.
		{ip: "169.254.10.1", allowed: only("169.254.10.0/24")},
		{ip: "10.1.2.3", blocked: only("10.0.0.0/8"), allowed: only("10.1.0.0/16")},
		{ip: "10.2.0.1", blocked: only("10.0.0.0/8"), allowed: only("10.1.0.0/16"), want: "(10.0.0.0/8)"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s blocked %v allowed %v", tc.ip, tc.blocked, tc.allowed), func(t *testing.T) {
			v := New(Config{Resolver: failResolver{t}, BlockedNetworks: tc.blocked, AllowedNetworks: tc.allowed})
			err := v.refuse(net.ParseIP(tc.ip))
			var be *blockedError
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refuse(%s) = %v, want allowed", tc.ip, err)
			case tc.want != "" && !errors.As(err, &be):
				t.Errorf("refuse(%s) = %v, want refused: %s", tc.ip, err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("refuse(%s) = %q, want %q in it", tc.ip, err, tc.want)
			}
		})
	}
}

// guardDialer returns a dialer that lets only allowed addresses (host, no
// port) be dialed and fails the test on any other: validation must not reach
// what it was told not to, and a test must never leave loopback even when
// the code under test is wrong.
func guardDialer(t *testing.T, allowed ...string) *net.Dialer {
	t.Helper()
	return &net.Dialer{ControlContext: func(_ context.Context, _, address string, _ syscall.RawConn) error {
		host, _, _ := net.SplitHostPort(address)
		if !slices.Contains(allowed, host) {
			t.Errorf("dialed %s", address)
			return errors.New("test: dialing " + address + " is not allowed")
		}
		return nil
	}}
}

// counter is a handler that answers the challenge and counts requests.
type counter struct {
	mu   sync.Mutex
	hits int
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.hits++
	c.mu.Unlock()
	respond(testKeyAuth).ServeHTTP(w, r)
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// TestHTTP01Blocked checks that http-01 never connects to a blocked
// address, however it learned of it. A server that would answer correctly
// listens on 127.0.0.2, and must see no request.
func TestHTTP01Blocked(t *testing.T) {
	if !listenable("127.0.0.2") {
		t.Skip("cannot listen on 127.0.0.2")
	}
	res := NewResolver(startDNS(t, &testZone{}))
	block2 := []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}
	dnsID := acme.Identifier{Type: acme.IdentifierDNS, Value: "blocked.example.test"}

	tests := []struct {
		name string
		id   acme.Identifier
		// redirect, when set, is where a server on 127.0.0.1 redirects to;
		// "PORT" is replaced by the port.
		redirect string
		blocked  []netip.Prefix
		want     []string
	}{
		{
			name: "name resolving to a blocked address", id: dnsID, blocked: block2,
			want: []string{"127.0.0.2: Fetching http://blocked.example.test:", "127.0.0.2 is in a network validation may not connect to (127.0.0.2/32)"},
		},
		{
			name: "blocked IP identifier", id: acme.Identifier{Type: acme.IdentifierIP, Value: "127.0.0.2"}, blocked: block2,
			want: []string{"127.0.0.2: Fetching http://127.0.0.2:", "127.0.0.2 is in a network validation may not connect to (127.0.0.2/32)"},
		},
		{
			name: "metadata address by default", id: acme.Identifier{Type: acme.IdentifierIP, Value: "169.254.169.254"},
			want: []string{"169.254.169.254 is in a network validation may not connect to (169.254.0.0/16)"},
		},
		{
			name: "IPv4-mapped metadata address", id: acme.Identifier{Type: acme.IdentifierIP, Value: "::ffff:169.254.169.254"},
			want: []string{"169.254.169.254 is in a network validation may not connect to (169.254.0.0/16)"},
		},
		{
			name: "IPv6 link-local by default", id: acme.Identifier{Type: acme.IdentifierIP, Value: "fe80::1"},
			want: []string{"fe80::1 is in a network validation may not connect to (fe80::/10)"},
		},
		{
			name: "redirect to a blocked address", id: acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"},
			redirect: "http://127.0.0.2:PORT" + testPath, blocked: block2,
			want: []string{"127.0.0.2: Fetching http://127.0.0.2:", "127.0.0.2 is in a network validation may not connect to (127.0.0.2/32)"},
		},
		{
			name: "redirect to a name resolving to a blocked address", id: acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"},
			redirect: "http://blocked.example.test:PORT" + testPath, blocked: block2,
			want: []string{"Fetching http://blocked.example.test:", "127.0.0.2 is in a network validation may not connect to (127.0.0.2/32)"},
		},
		{
			name: "redirect to the metadata address", id: acme.Identifier{Type: acme.IdentifierIP, Value: "127.0.0.1"},
			redirect: "http://169.254.169.254:PORT/latest/meta-data/",
			want:     []string{"169.254.169.254 is in a network validation may not connect to (169.254.0.0/16)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target := &counter{}
			port := serveAt(t, "127.0.0.2", 0, target)
			var allowed []string
			if tc.redirect != "" {
				// The same port on 127.0.0.1, as a redirect must keep it.
				serveAt(t, "127.0.0.1", port, redirect(func(*http.Request) string {
					return strings.ReplaceAll(tc.redirect, "PORT", strconv.Itoa(port))
				}))
				allowed = []string{"127.0.0.1"}
			}
			v := New(Config{Resolver: res, HTTPPort: port, BlockedNetworks: tc.blocked, Dialer: guardDialer(t, allowed...)})

			err := validateErr(v, t.Context(), acme.ChallengeHTTP01, tc.id, testToken, testKeyAuth)
			checkProblem(t, err, acme.ErrConnection, tc.id, tc.want, nil)
			if n := target.count(); n != 0 {
				t.Errorf("the blocked server got %d requests", n)
			}
		})
	}
}

// TestMaxConcurrent runs two validations against a server that holds each
// request until told, and counts how many it holds at once.
func TestMaxConcurrent(t *testing.T) {
	tests := []struct {
		name          string
		maxConcurrent int
		want          int // most requests in flight at once
	}{
		{name: "one slot: the second waits", maxConcurrent: 1, want: 1},
		{name: "two slots: both run", maxConcurrent: 2, want: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu                  sync.Mutex
				inFlight, maxFlight int
			)
			arrived := make(chan struct{}, 2)
			release := make(chan struct{})
			port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				inFlight++
				maxFlight = max(maxFlight, inFlight)
				mu.Unlock()
				// Runs before the response is flushed, so before the
				// validator can hand its slot on.
				defer func() {
					mu.Lock()
					inFlight--
					mu.Unlock()
				}()
				arrived <- struct{}{}
				select {
				case <-release:
					respond(testKeyAuth).ServeHTTP(w, r)
				case <-r.Context().Done():
				}
			}))
			v := New(Config{Resolver: NewResolver(startDNS(t, &testZone{})), HTTPPort: port, MaxConcurrent: tc.maxConcurrent, MaxPerAccount: -1})
			queued := make(chan struct{}, 2)
			v.queued = func() { queued <- struct{}{} }

			id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
			errs := make(chan error, 2)
			validate := func() { errs <- validateErr(v, t.Context(), acme.ChallengeHTTP01, id, testToken, testKeyAuth) }
			go validate()
			<-arrived
			go validate()
			if tc.want == 1 {
				<-queued // the second validation waits for the first's slot
			} else {
				<-arrived // the second validation reached the server too
			}
			close(release)
			for range 2 {
				if err := <-errs; err != nil {
					t.Errorf("Validate: %v", err)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if maxFlight != tc.want {
				t.Errorf("at most %d requests in flight, want %d", maxFlight, tc.want)
			}
		})
	}
}

// TestValidateNoSlot checks a validation whose context ends while it waits
// for a slot: it never ran, so it is not a problem that would fail the
// challenge.
func TestValidateNoSlot(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(t *testing.T, v *Validator) context.Context
		want error
	}{
		{
			name: "canceled while queued",
			ctx: func(t *testing.T, v *Validator) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				v.queued = cancel
				return ctx
			},
			want: context.Canceled,
		},
		{
			name: "deadline already passed",
			ctx: func(t *testing.T, v *Validator) context.Context {
				ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			// A slot freed now would leave less than a full validation
			// before the deadline: the wait ends at once.
			name: "deadline nearer than one timeout",
			ctx: func(t *testing.T, v *Validator) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), v.timeout/2)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
		{
			// The wait itself runs out, one timeout before the deadline.
			name: "no slot before the deadline",
			ctx: func(t *testing.T, v *Validator) context.Context {
				v.timeout = 50 * time.Millisecond
				ctx, cancel := context.WithTimeout(t.Context(), 4*v.timeout)
				t.Cleanup(cancel)
				return ctx
			},
			want: context.DeadlineExceeded,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := New(Config{Resolver: failResolver{t}, MaxConcurrent: 1, Dialer: guardDialer(t)})
			// The only slot is taken, by another account, for the whole test.
			release, err := v.gate.acquire(t.Context(), "other-account")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(release)
			id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}

			err = validateErr(v, tc.ctx(t, v), acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
			var p *acme.Problem
			if errors.As(err, &p) {
				t.Errorf("Validate = problem %v; a validation that never ran must not fail the challenge", p)
			}
		})
	}
}
