package challenges

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/acmed/acmed/acme"
)

const (
	testToken   = "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0"
	testKeyAuth = testToken + ".9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI"
	testPath    = challengePath + testToken
)

// serve runs h on 127.0.0.1 until the test ends and returns its port.
func serve(t testing.TB, h http.Handler) int {
	t.Helper()
	return startServer(t, h, false)
}

// serveTLS is serve over TLS with a certificate no one trusts.
func serveTLS(t testing.TB, h http.Handler) int {
	t.Helper()
	return startServer(t, h, true)
}

func startServer(t testing.TB, h http.Handler, useTLS bool) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	if useTLS {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return l.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port on which nothing listens.
func closedPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// respond serves body at the challenge path and 404 elsewhere.
func respond(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != testPath {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, body)
	})
}

// redirect sends every request to target(r).
func redirect(target func(r *http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target(r), http.StatusFound)
	})
}

// samePort is the port of the server that got r, for redirects that must
// stay on the allowed port without sharing a variable with the handler.
func samePort(r *http.Request) string {
	_, port, _ := net.SplitHostPort(r.Host)
	return port
}

// blackhole returns a dialer whose connections to ips never complete, as
// behind a firewall that drops packets.
func blackhole(ips ...string) *net.Dialer {
	return &net.Dialer{ControlContext: func(ctx context.Context, _, address string, _ syscall.RawConn) error {
		if host, _, _ := net.SplitHostPort(address); slices.Contains(ips, host) {
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}}
}

// hang blocks every request until the test ends or the client goes away;
// with headersFirst it sends the status line before blocking.
func hang(t testing.TB, headersFirst bool) http.Handler {
	t.Helper()
	release := make(chan struct{})
	// Registered after the server's Close, so it runs first and lets Close
	// return.
	t.Cleanup(func() { close(release) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if headersFirst {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
}

// checkProblem asserts that err is nil when want is, and otherwise a problem
// of want's type about id whose detail holds every one of words.
func checkProblem(t *testing.T, err error, want *acme.Problem, id acme.Identifier, words, notWords []string) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Validate: %v, want success", err)
		}
		return
	}
	var p *acme.Problem
	if !errors.As(err, &p) {
		t.Fatalf("Validate = %v (%T), want a %s problem", err, err, want.Type)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Validate = %v, want type %s", err, want.Type)
	}
	t.Logf("detail: %s", p.Detail)
	if p.Identifier == nil || *p.Identifier != id {
		t.Errorf("problem identifier = %v, want %v", p.Identifier, id)
	}
	if p.Status == 0 {
		t.Errorf("problem has no HTTP status")
	}
	for _, w := range words {
		if !strings.Contains(p.Detail, w) {
			t.Errorf("detail %q does not contain %q", p.Detail, w)
		}
	}
	for _, w := range notWords {
		if strings.Contains(p.Detail, w) {
			t.Errorf("detail %q contains %q", p.Detail, w)
		}
	}
}

// failResolver fails the test when a lookup is made.
type failResolver struct{ t *testing.T }

func (r failResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	r.t.Errorf("unexpected lookup of %q", host)
	return nil, errors.New("unexpected lookup")
}

func (r failResolver) LookupTXT(_ context.Context, name string) ([]string, error) {
	r.t.Errorf("unexpected TXT lookup of %q", name)
	return nil, errors.New("unexpected lookup")
}

// serveAt runs h on host (an IP address) at port (0: any) until the test
// ends and returns its port.
func serveAt(t testing.TB, host string, port int, h http.Handler) int {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().(*net.TCPAddr).Port
}
