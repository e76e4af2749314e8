// Package vaulttest runs a real HashiCorp Vault dev server for a test, as
// redistest runs a redis-server: the binary integration/vault/build.sh
// builds (or $VAULT_BIN), on a loopback port, stopped in t.Cleanup. SetupPKI
// gives it what acmed's Vault backend needs: a root, an intermediate mount
// with a role, a least-privilege policy, a token and an AppRole. With the
// TLS option the server listens on HTTPS (-dev-tls) with a CA of its own.
package vaulttest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RootToken is the dev server's root token.
const RootToken = "vaulttest-root"

const (
	pollInterval = 25 * time.Millisecond
	startTimeout = 60 * time.Second // a busy CI machine loads a 361 MB binary slowly
	stopTimeout  = 10 * time.Second
)

// Server is a Vault dev server for a test.
type Server struct {
	Addr string // http://127.0.0.1:PORT, or https:// with TLS
	Bin  string
	Dir  string
	// CAFile is, with TLS, the PEM file of the CA Vault's TLS certificate
	// chains to (-dev-tls-cert-dir's vault-ca.pem); "" over HTTP.
	CAFile string
	log    string // the server's output

	cmd  *exec.Cmd
	done chan struct{}
	http *http.Client
}

// Bin is the Vault binary tests use: $VAULT_BIN, else the one
// integration/vault/build.sh builds into integration/vault/.bin.
func Bin() string {
	if b := os.Getenv("VAULT_BIN"); b != "" {
		return b
	}
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) {
		return filepath.Join(filepath.Dir(file), "..", "..", "integration", "vault", ".bin", "vault")
	}
	return filepath.Join("integration", "vault", ".bin", "vault")
}

// BuildCommand is what builds the binary Bin names.
const BuildCommand = "bash integration/vault/build.sh"

// Option changes how Start runs the server.
type Option func(*options)

type options struct{ tls bool }

// TLS has the server listen on HTTPS with a certificate for localhost and
// 127.0.0.1 from a CA the dev server makes (-dev-tls), written to
// Server.CAFile; Server's own requests trust that CA alone.
func TLS() Option { return func(o *options) { o.tls = true } }

// Start starts a Vault dev server and waits until GET /v1/sys/health
// answers 200. Without the binary it skips the test, or fails it when CI
// is "true".
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin := Bin()
	if _, err := os.Stat(bin); err != nil {
		msg := fmt.Sprintf("Vault not built (%v): run %s (or set VAULT_BIN)", err, BuildCommand)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	var last error
	for range 5 {
		s, err := launch(t, bin, dir, o)
		if err == nil {
			return s
		}
		last = err
	}
	t.Fatalf("vaulttest: %v", last)
	return nil
}

var unsealRE = regexp.MustCompile(`Unseal Key: (\S+)`)

func launch(t testing.TB, bin, dir string, o options) (*Server, error) {
	t.Helper()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	logPath := filepath.Join(dir, "vault-"+strconv.Itoa(port)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	args := []string{"server", "-dev", "-dev-root-token-id=" + RootToken,
		"-dev-listen-address=" + addr, "-dev-no-store-token", "-log-level=warn"}
	scheme, caFile := "http", ""
	if o.tls {
		// A directory per attempt: a retry on another port must not
		// read the CA of a server that failed to start.
		certDir := filepath.Join(dir, "tls-"+strconv.Itoa(port))
		if err := os.Mkdir(certDir, 0o700); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-dev-tls", "-dev-tls-cert-dir="+certDir)
		scheme, caFile = "https", filepath.Join(certDir, "vault-ca.pem")
	}
	cmd := exec.Command(bin, args...)
	// HOME: the dev server's token helper and anything else it keeps
	// stay in the test's directory.
	cmd.Env = append(os.Environ(), "HOME="+dir, "VAULT_ADDR=", "VAULT_TOKEN=")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("vaulttest: start %s: %v", bin, err)
	}
	s := &Server{Addr: scheme + "://" + addr, Bin: bin, Dir: dir, CAFile: caFile, log: logPath, cmd: cmd, done: make(chan struct{})}
	if !o.tls {
		s.http = &http.Client{Timeout: 10 * time.Second}
	}
	go func() { _ = cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-s.done:
			out, _ := os.ReadFile(logPath)
			if bytes.Contains(out, []byte("address already in use")) {
				return nil, fmt.Errorf("port %d taken", port)
			}
			t.Fatalf("vaulttest: vault server exited: %s", out)
		default:
		}
		if s.http == nil {
			// TLS: the dev server writes its CA before it listens.
			s.http = trusting(caFile)
		}
		if s.http != nil && s.healthy() {
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			out, _ := os.ReadFile(logPath)
			t.Fatalf("vaulttest: vault at %s not healthy after %s: %s", s.Addr, startTimeout, out)
		}
		time.Sleep(pollInterval)
	}
	t.Cleanup(s.stop)
	return s, nil
}

// trusting is an HTTP client trusting only the CA in caFile, or nil while
// the file holds no complete PEM certificate.
func trusting(caFile string) *http.Client {
	raw, err := os.ReadFile(caFile)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil
	}
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}

// healthy: GET /v1/sys/health answers 200 (active, unsealed).
func (s *Server) healthy() bool {
	resp, err := s.http.Get(s.Addr + "/v1/sys/health")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// HTTPClient is a client for the server's URLs (its CRL, say): with TLS
// it trusts Vault's CA.
func (s *Server) HTTPClient() *http.Client { return s.http }

// PID is the server's process ID.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// stop ends the server by its PID: SIGTERM, then SIGKILL.
func (s *Server) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Call sends a request with the root token and returns the status and
// the decoded JSON body (nil when there is none). It fails the test only
// when Vault cannot be reached.
func (s *Server) Call(t testing.TB, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return s.CallAs(t, RootToken, method, path, body)
}

// CallAs is Call with another token ("" for none).
func (s *Server) CallAs(t testing.TB, token, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.Addr+"/v1/"+strings.TrimPrefix(path, "/"), r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		t.Fatalf("vaulttest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		_ = json.Unmarshal(raw, &out)
	}
	return resp.StatusCode, out
}

// Must is Call that fails the test unless Vault answers 2xx; it returns
// the body's data (or auth, for a login) object.
func (s *Server) Must(t testing.TB, method, path string, body any) map[string]any {
	t.Helper()
	status, out := s.Call(t, method, path, body)
	if status/100 != 2 {
		t.Fatalf("vaulttest: %s %s: %d %v", method, path, status, out)
	}
	if d, ok := out["data"].(map[string]any); ok {
		return d
	}
	if d, ok := out["auth"].(map[string]any); ok {
		return d
	}
	return out
}

// Seal seals Vault; Unseal unseals it and waits until it is active.
func (s *Server) Seal(t testing.TB) { t.Helper(); s.Must(t, http.MethodPut, "sys/seal", nil) }

func (s *Server) Unseal(t testing.TB) {
	t.Helper()
	s.Must(t, http.MethodPut, "sys/unseal", map[string]any{"key": s.unsealKey(t)})
	deadline := time.Now().Add(startTimeout)
	for !s.healthy() {
		if time.Now().After(deadline) {
			t.Fatal("vaulttest: Vault not active after unseal")
		}
		time.Sleep(pollInterval)
	}
}

// unsealKey is the key the dev server prints, once it has (it may do so
// after it answers health checks).
func (s *Server) unsealKey(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		out, _ := os.ReadFile(s.log)
		if m := unsealRE.FindSubmatch(out); m != nil {
			return string(m[1])
		}
		if time.Now().After(deadline) {
			t.Fatal("vaulttest: the dev server printed no unseal key")
		}
		time.Sleep(pollInterval)
	}
}

var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// freePort returns a loopback port that is free with the one above it:
// a dev server's cluster listener takes API port + 1.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p, ok := probe(0)
		if !ok || p >= 65535 || handedOut[p] || handedOut[p+1] {
			continue
		}
		if _, ok := probe(p + 1); !ok {
			continue
		}
		handedOut[p], handedOut[p+1] = true, true
		return p
	}
	t.Fatal("vaulttest: no free port pair on 127.0.0.1")
	return 0
}

func probe(port int) (int, bool) {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, false
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, true
}
