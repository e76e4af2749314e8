// Package interop drives real ACME clients (certbot, lego, Caddy) against a
// real acmed process, with real Redis, a real DNS server and the clients'
// own http-01 and tls-alpn-01 responders, all on loopback.
//
// Install the clients with tools.sh (or `make interop`, which runs it first).
// A missing client skips its test, or fails it when CI is "true". Each test
// writes the clients' and acmed's output to files in its log directory
// ($INTEROP_LOG_DIR/<test> when set, relative to this directory, else a
// temporary directory) and, when it fails, prints the last lines of each.
// README.md has the table of what each client covers.
package interop

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/integration/acmedtest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

const (
	// tailLines is how much of each log a failing test prints.
	tailLines = 80
	// clientTimeout bounds one run of a client command.
	clientTimeout = 3 * time.Minute
	// stopTimeout is how long a process gets after SIGTERM before SIGKILL.
	stopTimeout = 10 * time.Second
	// logWait bounds waiting for a line in acmed's log.
	logWait = 15 * time.Second
)

// acmedBinary is built once per test run by TestMain.
var acmedBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acmed-interop-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if acmedBinary, err = acmedtest.Build(dir); err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// binDir is where tools.sh puts the clients it builds: $INTEROP_BIN, or
// .bin beside this file.
func binDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("INTEROP_BIN")
	if dir == "" {
		dir = ".bin"
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// needTool returns the path of a client: a file in .bin when local, else a
// command on PATH. A missing one skips the test, or fails it on CI.
func needTool(t testing.TB, name string, local bool) string {
	t.Helper()
	var path string
	var err error
	if local {
		path = filepath.Join(binDir(t), name)
		_, err = os.Stat(path)
	} else {
		path, err = exec.LookPath(name)
	}
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("%s not found (%v): run integration/interop/tools.sh", name, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// env is one client test's world: Redis, the test DNS with its management
// API, and an acmed process whose http-01 and tls-alpn-01 validations go to
// ports the client under test listens on.
type env struct {
	t    *testing.T // the top-level test, whose end stops everything
	logs string     // directory of every log file of this test

	dns  *challengetest.DNS
	mgmt string // base URL of the DNS management API, for the clients' hooks

	// httpPort and alpnPort are where acmed validates http-01 and
	// tls-alpn-01: the client under test serves them there.
	httpPort, alpnPort int

	acmed *acmed

	mu       sync.Mutex
	logFiles []string // tailed on failure, in this order
}

// acmed is a running acmed process.
type acmed struct {
	dirURL   string // the directory URL
	data     string
	rootFile string // acmed-data/root.pem
	roots    *x509.CertPool
	log      string // acmed's stderr
}

// newEnv starts Redis, the DNS server and its API, and acmed with extra
// flags. Everything is stopped when the test ends.
func newEnv(t *testing.T, acmedArgs ...string) *env {
	t.Helper()
	return newEnvWith(t, nil, nil, acmedArgs...)
}

// newEnvPrepared is newEnv with prepare, when not nil, run on acmed's
// --data between init and serve; the flags it returns are added to serve's.
func newEnvPrepared(t *testing.T, prepare func(data string) []string, acmedArgs ...string) *env {
	t.Helper()
	return newEnvWith(t, nil, prepare, acmedArgs...)
}

// newEnvCA is newEnv with caFlags (a CA backend's) given to both acmed init
// and acmed serve.
func newEnvCA(t *testing.T, caFlags []string, acmedArgs ...string) *env {
	t.Helper()
	return newEnvWith(t, caFlags, nil, acmedArgs...)
}

// newEnvWith is newEnv with caFlags and prepare both.
func newEnvWith(t *testing.T, caFlags []string, prepare func(data string) []string, acmedArgs ...string) *env {
	t.Helper()
	e := &env{t: t, logs: logDir(t)}
	t.Logf("logs in %s", e.logs)
	// Registered first, so it runs last: after every process has stopped and
	// flushed its output.
	t.Cleanup(e.dumpLogsOnFailure)

	// A Redis of its own even when REDIS_URL names a shared one (WithAOF
	// asks for that): acmed replicas sharing a store share the validation
	// queue, and each acmed here must validate on its own client's ports.
	rds := redistest.Start(t, redistest.WithAOF())

	d, err := challengetest.ListenDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	e.dns = d
	api := httptest.NewServer(logRequests(challengetest.NewAPI(d, nil, nil), e.logFile("dns-api.log")))
	t.Cleanup(api.Close)
	e.mgmt = api.URL

	e.httpPort, e.alpnPort = freePort(t), freePort(t)
	// serve never creates a CA for a Redis store.
	data := filepath.Join(t.TempDir(), "acmed-data")
	if out, err := exec.Command(acmedBinary, append([]string{"init", "--data", data}, caFlags...)...).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	if prepare != nil {
		acmedArgs = append(slices.Clip(acmedArgs), prepare(data)...)
	}
	args := append([]string{
		"serve",
		"--store", rds.URL,
		"--resolver", d.Addr,
		"--http01-port", fmt.Sprint(e.httpPort),
		"--tlsalpn01-port", fmt.Sprint(e.alpnPort),
		"--listen", "127.0.0.1:0",
		"--data", data,
		"--log-level", "debug",
		"--drain-delay", "0s", // no balancer to tell: stop at once
	}, slices.Concat(caFlags, acmedArgs)...)
	if !slices.Contains(caFlags, "vault") { // with Vault, acmed has no CRL of its own
		args = append(args, "--crl-refresh", "2s") // revocations reach the CRL in seconds (waitOnCRL)
	}
	e.acmed = e.startAcmed(args)
	return e
}

// dualStack gives name the AAAA record ::1 beside the default A 127.0.0.1.
// The clients' own http-01 and tls-alpn-01 servers listen on 127.0.0.1
// only, so acmed must fall back to IPv4 when IPv6 is refused, as
// certbot --standalone and lego users rely on.
func (e *env) dualStack(name string) {
	e.dns.AddA(name, netip.IPv6Loopback())
}

// logDir is $INTEROP_LOG_DIR/<test name>, or a temporary directory.
func logDir(t *testing.T) string {
	base := os.Getenv("INTEROP_LOG_DIR")
	if base == "" {
		return t.TempDir()
	}
	dir, err := filepath.Abs(filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_")))
	if err == nil {
		_ = os.RemoveAll(dir)
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// logFile is the path of a log file in the test's log directory, which is
// tailed if the test fails.
func (e *env) logFile(name string) string {
	p := filepath.Join(e.logs, name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.logFiles, p) {
		e.logFiles = append(e.logFiles, p)
	}
	return p
}

func (e *env) dumpLogsOnFailure() {
	if !e.t.Failed() {
		return
	}
	e.mu.Lock()
	files := slices.Clone(e.logFiles)
	e.mu.Unlock()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		e.t.Logf("---- last %d lines of %s ----\n%s", tailLines, f, tail(string(b), tailLines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// logRequests writes one line per management API call, so a failing dns-01
// run shows what the client's hook asked for.
func logRequests(h http.Handler, path string) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		mu.Lock()
		defer mu.Unlock()
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintf(f, "%s %s %s %s -> %d\n", time.Now().Format(time.RFC3339Nano), r.Method, r.URL.Path, body, rec.status)
			f.Close()
		}
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

var (
	portsMu   sync.Mutex
	portsUsed = map[int]bool{}
)

// freePort is a TCP port nothing listens on right now, on loopback and on
// all addresses (Caddy binds the wildcard address), never handed out twice
// in this test binary. It is taken below Linux's ephemeral range
// (32768-60999): a port handed out is bound later, by a client or acmed,
// and in between the kernel may give an ephemeral one to anything binding
// port 0 (acmed's own --listen 127.0.0.1:0 took a client's http-01 port
// once in CI).
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := 20000 + rand.IntN(12000)
		if portsUsed[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		if l2, err := net.Listen("tcp", fmt.Sprintf(":%d", p)); err == nil {
			l2.Close()
			portsUsed[p] = true
			return p
		}
	}
	t.Fatal("no free port")
	return 0
}

// startAcmed runs acmed and waits for its ready message.
func (e *env) startAcmed(args []string) *acmed {
	t := e.t
	t.Helper()
	a := &acmed{log: e.logFile("acmed.log")}
	for i, arg := range args {
		if arg == "--data" {
			a.data = args[i+1]
		}
	}
	// acmed prints its directory URL on stdout, which start picks out.
	p := e.start("acmed", a.log, nil, acmedBinary, args...)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if u := p.readyURL(); u != "" {
			a.dirURL = u
			break
		}
		if p.exited() {
			t.Fatalf("acmed exited before it was ready: %v", p.err)
		}
		if time.Now().After(deadline) {
			t.Fatal("acmed did not print its directory URL within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.rootFile = filepath.Join(a.data, "root.pem")
	rootPEM, err := os.ReadFile(a.rootFile)
	if err != nil {
		t.Fatal(err)
	}
	a.roots = x509.NewCertPool()
	if !a.roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	t.Logf("acmed %s (root %s, http-01 port %d, tls-alpn-01 port %d)", a.dirURL, a.rootFile, e.httpPort, e.alpnPort)
	return a
}
