package challenges

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

func TestHTTP01(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))

	tests := []struct {
		name   string
		domain string // default "v4.example.test"
		// setup starts what the validator talks to and returns the ports it
		// may use; httpsPort 0 leaves the validator's default (443).
		setup   func(t *testing.T) (httpPort, httpsPort int)
		cfg     Config // Resolver and HTTPPort are filled in
		wantErr *acme.Problem
		want    []string // in the detail
		notWant []string // not in the detail
	}{
		{
			name:  "good response with trailing newline",
			setup: func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth+"\n")), 0 },
		},
		{
			name:  "trailing whitespace of all kinds",
			setup: func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth+" \t\r\n\n")), 0 },
		},
		{
			name:  "body exactly MaxBody",
			setup: func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth+"\n")), 0 },
			cfg:   Config{MaxBody: int64(len(testKeyAuth) + 1)},
		},
		{
			name:    "wrong body",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond("not the key authorization\n")), 0 },
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"127.0.0.1: ", "did not match", `Expected "` + testKeyAuth + `"`, "(got 26 bytes of text/plain from http://v4.example.test:"},
			notWant: []string{"not the key"},
		},
		{
			name:    "leading whitespace is not ignored",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(" "+testKeyAuth)), 0 },
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"did not match"},
		},
		{
			name: "a wrong body is described, never quoted",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "text/html; charset=utf-8")
					fmt.Fprint(w, "<html>secret-admin-page</html>")
				})), 0
			},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"(got 30 bytes of text/html from "},
			notWant: []string{"secret", "html>", "charset"},
		},
		{
			name: "a content type that does not parse is not shown",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "secret token")
					fmt.Fprint(w, "x")
				})), 0
			},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"(got 1 bytes of an invalid content type from "},
			notWant: []string{"secret"},
		},
		{
			name: "a 500 page is not quoted",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, "secret stack trace", http.StatusInternalServerError)
				})), 0
			},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"500 Internal Server Error"},
			notWant: []string{"secret"},
		},
		{
			name: "a server that does not speak HTTP is not quoted",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						fmt.Fprint(conn, "SSH-2.0-secret-banner\r\n\r\n")
						conn.Close()
					}
				})), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"not a valid HTTP response"},
			notWant: []string{"secret", "SSH"},
		},
		{
			name: "redirect with credentials",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(r *http.Request) string { return "http://user:pw@v4.example.test:" + samePort(r) + "/x" })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"not allowed: a URL with credentials is not followed"},
		},
		{
			name: "redirect to an invalid name",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(r *http.Request) string { return "http://a_b..example.test:" + samePort(r) + "/x" })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{`"a_b..example.test" is not a valid DNS name`},
		},
		{
			name:    "404",
			setup:   func(t *testing.T) (int, int) { return serve(t, http.NotFoundHandler()), 0 },
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"127.0.0.1: Invalid response from http://v4.example.test:", testPath, "404"},
		},
		{
			name: "500",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					http.Error(w, testKeyAuth, http.StatusInternalServerError)
				})), 0
			},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"500"},
		},
		{
			name: "redirect to a path on the same host",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == testPath {
						http.Redirect(w, r, "/elsewhere/"+testToken, http.StatusMovedPermanently)
						return
					}
					if r.URL.Path == "/elsewhere/"+testToken {
						fmt.Fprintln(w, testKeyAuth)
						return
					}
					http.NotFound(w, r)
				})), 0
			},
		},
		{
			name: "redirect to another name on the same port",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasPrefix(r.Host, "v4.") {
						http.Redirect(w, r, "http://other.example.test:"+samePort(r)+testPath, http.StatusTemporaryRedirect)
						return
					}
					respond(testKeyAuth).ServeHTTP(w, r)
				})), 0
			},
		},
		{
			name: "redirect to https, certificate not verified",
			setup: func(t *testing.T) (int, int) {
				tlsPort := serveTLS(t, respond(testKeyAuth))
				return serve(t, redirect(func(r *http.Request) string {
					return "https://v4.example.test:" + strconv.Itoa(tlsPort) + testPath
				})), tlsPort
			},
		},
		{
			name: "redirect to https on a server that does not speak TLS",
			setup: func(t *testing.T) (int, int) {
				plainPort := serve(t, respond(testKeyAuth))
				return serve(t, redirect(func(r *http.Request) string {
					return "https://v4.example.test:" + strconv.Itoa(plainPort) + testPath
				})), plainPort
			},
			wantErr: acme.ErrTLS,
			want:    []string{"127.0.0.1: Fetching https://v4.example.test:", "TLS handshake failed"},
		},
		{
			name: "redirect loop",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(*http.Request) string { return testPath })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: ", "Too many redirects", "more than 10"},
		},
		{
			name: "redirect loop with MaxRedirects 2",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(*http.Request) string { return testPath })), 0
			},
			cfg:     Config{MaxRedirects: 2},
			wantErr: acme.ErrConnection,
			want:    []string{"Too many redirects", "more than 2"},
		},
		{
			name: "no redirects allowed",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(*http.Request) string { return "/elsewhere" })), 0
			},
			cfg:     Config{MaxRedirects: -1},
			wantErr: acme.ErrConnection,
			want:    []string{"Redirect to http://v4.example.test:", "/elsewhere is not followed"},
		},
		{
			name: "redirect to a disallowed port",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(*http.Request) string { return "http://v4.example.test:1/internal" })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://v4.example.test:", "Redirect to http://v4.example.test:1/internal is not allowed"},
		},
		{
			name: "redirect to https on a port other than 443",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(r *http.Request) string { return "https://v4.example.test:" + samePort(r) + "/x" })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"Redirect to https://v4.example.test:", "not allowed", "(https)"},
		},
		{
			name: "redirect to another scheme",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(*http.Request) string { return "ftp://v4.example.test/file" })), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"Redirect to ftp://v4.example.test/file is not allowed"},
		},
		{
			name: "redirect to a name that does not resolve",
			setup: func(t *testing.T) (int, int) {
				return serve(t, redirect(func(r *http.Request) string { return "http://nx.example.test:" + samePort(r) + "/x" })), 0
			},
			wantErr: acme.ErrDNS,
			want:    []string{"Fetching http://nx.example.test:", "nx.example.test does not resolve"},
		},
		{
			name:    "oversized body",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth+strings.Repeat(" ", 100))), 0 },
			cfg:     Config{MaxBody: int64(len(testKeyAuth))},
			wantErr: acme.ErrIncorrectResponse,
			want:    []string{"response too large", "more than " + strconv.Itoa(len(testKeyAuth)) + " bytes"},
		},
		{
			name:    "NXDOMAIN",
			domain:  "nx.example.test",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			wantErr: acme.ErrDNS,
			want:    []string{"nx.example.test does not resolve", "NXDOMAIN"},
		},
		{
			name:    "name without addresses",
			domain:  "empty.example.test",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			wantErr: acme.ErrDNS,
			want:    []string{"empty.example.test"},
		},
		{
			name:    "DNS server failure",
			domain:  "servfail.example.test",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			wantErr: acme.ErrDNS,
			want:    []string{"servfail.example.test"},
		},
		{
			name:    "DNS server never answers",
			domain:  "silent.example.test",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			cfg:     Config{Timeout: 300 * time.Millisecond},
			wantErr: acme.ErrDNS,
			want:    []string{"timeout", "silent.example.test"},
		},
		{
			name:    "connection refused",
			setup:   func(t *testing.T) (int, int) { return closedPort(t), 0 },
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://v4.example.test:", testPath + ": Connection refused"},
			notWant: []string{"also tried"},
		},
		{
			name:    "connection refused on every address",
			domain:  "dual.example.test",
			setup:   func(t *testing.T) (int, int) { return closedPort(t), 0 },
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://dual.example.test:", ": Connection refused; also tried ::1 (Connection refused)"},
		},
		{
			name:    "IPv6 only, nothing listening",
			domain:  "v6.example.test",
			setup:   func(t *testing.T) (int, int) { return closedPort(t), 0 },
			wantErr: acme.ErrConnection,
			want:    []string{"::1: Fetching http://v6.example.test:"},
		},
		{
			name:   "AAAA where nothing listens falls back to IPv4",
			domain: "dual.example.test",
			setup:  func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
		},
		{
			name:   "IPv6 drops packets, IPv4 answers",
			domain: "dual.example.test",
			setup:  func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			cfg:    Config{Timeout: time.Second, Dialer: blackhole("::1")},
		},
		{
			name:    "every address drops packets",
			domain:  "dual.example.test",
			setup:   func(t *testing.T) (int, int) { return serve(t, respond(testKeyAuth)), 0 },
			cfg:     Config{Timeout: 300 * time.Millisecond, Dialer: blackhole("::1", "127.0.0.1")},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://dual.example.test:", "Connect timeout", "also tried ::1 (Connect timeout"},
		},
		{
			name:    "server hangs before responding",
			setup:   func(t *testing.T) (int, int) { return serve(t, hang(t, false)), 0 },
			cfg:     Config{Timeout: 300 * time.Millisecond},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://v4.example.test:", "timeout"},
		},
		{
			name:    "server hangs in the body",
			setup:   func(t *testing.T) (int, int) { return serve(t, hang(t, true)), 0 },
			cfg:     Config{Timeout: 300 * time.Millisecond},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://v4.example.test:", "timeout"},
		},
		{
			name: "server closes without answering",
			setup: func(t *testing.T) (int, int) {
				return serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					conn, _, err := w.(http.Hijacker).Hijack()
					if err == nil {
						conn.Close()
					}
				})), 0
			},
			wantErr: acme.ErrConnection,
			want:    []string{"127.0.0.1: Fetching http://v4.example.test:", "closed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			httpPort, httpsPort := tc.setup(t)
			cfg := tc.cfg
			cfg.Resolver, cfg.HTTPPort, cfg.HTTPSPort = res, httpPort, httpsPort
			v := New(cfg)
			domain := tc.domain
			if domain == "" {
				domain = "v4.example.test"
			}
			id := acme.Identifier{Type: acme.IdentifierDNS, Value: domain}

			err := validateErr(v, t.Context(), acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			checkProblem(t, err, tc.wantErr, id, tc.want, tc.notWant)
		})
	}
}

func TestHTTP01Request(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	type seen struct {
		method, host, path, ua, accept string
	}
	got := make(chan seen, 1)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{r.Method, r.Host, r.URL.Path, r.Header.Get("User-Agent"), r.Header.Get("Accept-Encoding")}
		fmt.Fprint(w, testKeyAuth)
	}))
	v := New(Config{Resolver: res, HTTPPort: port})
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
	if err := validateErr(v, t.Context(), acme.ChallengeHTTP01, id, testToken, testKeyAuth); err != nil {
		t.Fatal(err)
	}
	want := seen{http.MethodGet, "v4.example.test:" + strconv.Itoa(port), testPath, userAgent, ""}
	if s := <-got; s != want {
		t.Errorf("request = %+v, want %+v", s, want)
	}
}

func TestChallengeURL(t *testing.T) {
	tests := []struct {
		domain string
		port   int
		want   string
	}{
		{"example.test", 80, "http://example.test/.well-known/acme-challenge/tok"},
		{"example.test", 5002, "http://example.test:5002/.well-known/acme-challenge/tok"},
		{"127.0.0.1", 80, "http://127.0.0.1/.well-known/acme-challenge/tok"},
		{"::1", 80, "http://[::1]/.well-known/acme-challenge/tok"},
		{"::1", 5002, "http://[::1]:5002/.well-known/acme-challenge/tok"},
	}
	for _, tc := range tests {
		if got := challengeURL(tc.domain, tc.port, "tok"); got != tc.want {
			t.Errorf("challengeURL(%q, %d) = %q, want %q", tc.domain, tc.port, got, tc.want)
		}
	}
}

func BenchmarkHTTP01(b *testing.B) {
	res := NewResolver(startDNS(b, &testZone{}))
	port := serve(b, respond(testKeyAuth+"\n"))
	v := New(Config{Resolver: res, HTTPPort: port})
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
	ctx := b.Context()
	for b.Loop() {
		if err := validateErr(v, ctx, acme.ChallengeHTTP01, id, testToken, testKeyAuth); err != nil {
			b.Fatal(err)
		}
	}
}

func TestHTTP01SystemResolver(t *testing.T) {
	// The zero Config resolves through the system, where localhost is
	// loopback by /etc/hosts.
	v := New(Config{HTTPPort: serve(t, respond(testKeyAuth))})
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "localhost"}
	if err := validateErr(v, t.Context(), acme.ChallengeHTTP01, id, testToken, testKeyAuth); err != nil {
		t.Fatal(err)
	}
}

func TestHTTP01IP(t *testing.T) {
	tests := []struct {
		name     string
		ip       string // the identifier, and where the server listens
		body     string // default the key authorization
		wantHost string // Host header, before ":port"
		wantErr  *acme.Problem
		want     []string
	}{
		{name: "IPv4", ip: "127.0.0.1", wantHost: "127.0.0.1"},
		{name: "IPv6", ip: "::1", wantHost: "[::1]"},
		{
			name: "IPv6 wrong body", ip: "::1", body: "something else", wantHost: "[::1]",
			wantErr: acme.ErrIncorrectResponse, want: []string{"::1: ", "did not match"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !listenable(tc.ip) {
				t.Skipf("cannot listen on %s", tc.ip)
			}
			body := tc.body
			if body == "" {
				body = testKeyAuth
			}
			hosts := make(chan string, 1)
			port := serveAt(t, tc.ip, 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hosts <- r.Host
				respond(body).ServeHTTP(w, r)
			}))
			// No resolver may be asked: an IP identifier is its own address.
			v := New(Config{Resolver: failResolver{t}, HTTPPort: port})
			id := acme.Identifier{Type: acme.IdentifierIP, Value: tc.ip}
			err := validateErr(v, t.Context(), acme.ChallengeHTTP01, id, testToken, testKeyAuth)
			checkProblem(t, err, tc.wantErr, id, tc.want, nil)
			if got, want := <-hosts, tc.wantHost+":"+strconv.Itoa(port); got != want {
				t.Errorf("Host = %q, want %q", got, want)
			}
		})
	}
}
