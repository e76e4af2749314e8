// Package certmanager proves acmed against cert-manager's ACME client code
// (github.com/cert-manager/cert-manager/third_party/forked/acme and
// pkg/acme/client, v1.21.2), used as a library. The tests call that client
// in the order and manner of cert-manager's controllers
// (pkg/issuer/acme/setup.go, pkg/controller/acmeorders/sync.go,
// pkg/controller/acmechallenges/sync.go), with CSRs made by cert-manager's
// own pkg/util/pki. They do NOT run the Kubernetes controller: no API server,
// no Issuer, Certificate, Order or Challenge resources, no solver pods and no
// self-check; what is proven is the wire protocol between cert-manager's
// client and a real acmed process.
//
// This is a module of its own so that cert-manager's dependencies (k8s
// apimachinery and ~48 more) stay out of acmed's go.mod.
package certmanager

import (
	"bufio"
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"

	acmecl "github.com/cert-manager/cert-manager/pkg/acme/client"
	"github.com/cert-manager/cert-manager/pkg/acme/client/middleware"
	acmeutil "github.com/cert-manager/cert-manager/pkg/acme/util"
	"github.com/cert-manager/cert-manager/pkg/metrics"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"

	"github.com/acmed/acmed/challenges/challengetest"
	"github.com/acmed/acmed/integration/acmedtest"
	"github.com/acmed/acmed/storage/redis/redistest"
)

// userAgent is what the controller passes as restConfig.UserAgent, roughly.
const userAgent = "cert-manager-acmed-integration/v1.21.2"

// acmedBinary is built once per test run by TestMain.
var acmedBinary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "acmed-certmanager-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Built in acmed's own module, not with the versions this module's
	// cert-manager requirements would select.
	if acmedBinary, err = acmedtest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// acmed is one acmed process.
type acmed struct {
	dir     string // the directory URL from the ready line
	data    string
	rootPEM []byte
	logPath string // its stderr

	cmd    *exec.Cmd
	exited chan struct{}
}

// env is what every issuance test needs: the responders acmed validates
// against and a running acmed.
type env struct {
	dns    *challengetest.DNS
	http01 *challengetest.HTTP01
	acmed  *acmed
}

// newEnv starts the challengetest DNS (A 127.0.0.1 for every name) and
// http-01 responder, a Redis, and acmed using all three, with extra flags.
func newEnv(t *testing.T, acmedArgs ...string) *env {
	t.Helper()
	r := redistest.Start(t)
	e := &env{}
	e.dns, e.http01 = startResponders(t)
	// serve never creates a CA for a Redis store.
	data := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command(acmedBinary, "init", "--data", data).CombinedOutput(); err != nil {
		t.Fatalf("acmed init: %v: %s", err, out)
	}
	e.acmed = startAcmed(t, data, append([]string{
		"--listen", "127.0.0.1:0",
		"--store", r.URL,
		"--resolver", e.dns.Addr,
		"--http01-port", strconv.Itoa(e.http01.Port),
	}, acmedArgs...)...)
	return e
}

// startAcmed runs `acmed serve --data data args...` and waits for its ready
// line. It is stopped by PID when the test ends, if not before.
func startAcmed(t *testing.T, data string, args ...string) *acmed {
	t.Helper()
	a, err := tryStartAcmed(t, data, args...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tryStartAcmed(t *testing.T, data string, args ...string) (*acmed, error) {
	t.Helper()
	logFile, err := os.CreateTemp(t.TempDir(), "acmed-*.log")
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	// --drain-delay 0s: no balancer to tell, so stop at once.
	cmd := exec.Command(acmedBinary, append([]string{"serve", "--data", data, "--log-level", "debug", "--drain-delay", "0s"}, args...)...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	a := &acmed{data: data, logPath: logFile.Name(), cmd: cmd, exited: make(chan struct{})}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "directory:"); ok {
				select {
				case found <- strings.TrimSpace(u):
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		// Wait only after stdout is drained, as os/exec asks.
		_ = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			t.Logf("acmed (pid %d) log %s, tail:\n%s", cmd.Process.Pid, a.logPath, a.logTail(16<<10))
		}
	})

	select {
	case a.dir = <-found:
	case <-a.exited:
		return nil, fmt.Errorf("acmed exited before it was ready: %v\n%s", cmd.ProcessState, a.logTail(8<<10))
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("acmed did not print its directory URL within 30s\n%s", a.logTail(8<<10))
	}
	if a.rootPEM, err = os.ReadFile(filepath.Join(data, "root.pem")); err != nil {
		return nil, err
	}
	return a, nil
}

// stop ends the process with SIGTERM, then SIGKILL after a bounded wait.
func (a *acmed) stop(t *testing.T) {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
	case <-time.After(20 * time.Second):
		t.Logf("acmed pid %d ignored SIGTERM for 20s; killing it", a.cmd.Process.Pid)
		_ = a.cmd.Process.Kill()
		select {
		case <-a.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("acmed pid %d still running 10s after SIGKILL", a.cmd.Process.Pid)
		}
	}
}

func (a *acmed) logTail(n int) string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = append([]byte("...\n"), b[len(b)-n:]...)
	}
	return string(b)
}

// rootPool holds only acmed's root.pem.
func (a *acmed) rootPool(t *testing.T) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(a.rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	return pool
}

// freePort is a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newAccountKey is what the Issuer controller generates for a new Issuer:
// pki.GenerateRSAPrivateKey(pki.MinRSAKeySize), RSA-2048.
func newAccountKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := pki.GenerateRSAPrivateKey(pki.MinRSAKeySize)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newClient builds the client the way pkg/acme/accounts.NewClient does
// (newClientFromHTTPClient and buildHTTPClientWithCABundle there): the
// logging middleware around acme.Client with acmeutil.RetryBackoff, over an
// instrumented http.Client with a 90 s timeout whose TLS config trusts only
// the CA bundle, here acmed's root.pem. The one addition is rec, a recorder
// under the instrumented transport, so tests can see every exchange
// (including the client's own retries).
func newClient(t *testing.T, a *acmed, key *rsa.PrivateKey) (acmecl.Interface, *recorder) {
	t.Helper()
	rec := &recorder{next: &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: a.rootPool(t)},
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}}
	httpClient := acmecl.NewInstrumentedClient(newMetrics(), &http.Client{Transport: rec, Timeout: 90 * time.Second})
	t.Cleanup(httpClient.CloseIdleConnections)
	return middleware.NewLogger(&acmeapi.Client{
		Key:          key,
		HTTPClient:   httpClient,
		DirectoryURL: a.dir,
		UserAgent:    userAgent,
		RetryBackoff: acmeutil.RetryBackoff,
	}), rec
}

func newMetrics() *metrics.Metrics { return metrics.New(logr.Discard(), clock.RealClock{}) }

// exchange is one HTTP request the client made and what acmed answered.
type exchange struct {
	Method   string
	URL      string
	Status   int
	Problem  string // the problem document's type, if any
	Detail   string
	Nonce    string // Replay-Nonce
	Location string
	Link     []string
	Body     []byte // a JSON (not problem) answer's body, e.g. an order
	Request  []byte // a POST's JWS payload, decoded
}

// jwsPayload decodes the payload of a POST's flattened JWS, leaving the
// request's body as it was.
func jwsPayload(req *http.Request) ([]byte, error) {
	if req.Method != http.MethodPost || req.Body == nil {
		return nil, nil
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var jws struct{ Payload string }
	if err := json.Unmarshal(body, &jws); err != nil {
		return nil, fmt.Errorf("POST %s: body is not a JWS: %w", req.URL, err)
	}
	return base64.RawURLEncoding.DecodeString(jws.Payload)
}

func (e exchange) String() string {
	s := fmt.Sprintf("%s %s -> %d", e.Method, e.URL, e.Status)
	if e.Problem != "" {
		s += fmt.Sprintf(" %s (%s)", e.Problem, e.Detail)
	}
	if e.Location != "" {
		s += " Location: " + e.Location
	}
	return s
}

// recorder is an http.RoundTripper that keeps a log of exchanges.
type recorder struct {
	next http.RoundTripper

	mu  sync.Mutex
	log []exchange
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	payload, err := jwsPayload(req)
	if err != nil {
		return nil, err
	}
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	e := exchange{
		Method: req.Method, URL: req.URL.String(), Status: res.StatusCode,
		Nonce: res.Header.Get("Replay-Nonce"), Location: res.Header.Get("Location"), Link: res.Header.Values("Link"),
		Request: payload,
	}
	switch ct := res.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "application/json"):
		// Kept for what the client's types drop (its Order has no profile).
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		e.Body = body
		res.Body = io.NopCloser(bytes.NewReader(body))
	case strings.HasPrefix(ct, "application/problem+json"):
		body, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		var p struct{ Type, Detail string }
		_ = json.Unmarshal(body, &p)
		e.Problem, e.Detail = p.Type, p.Detail
		res.Body = io.NopCloser(bytes.NewReader(body))
	}
	r.mu.Lock()
	r.log = append(r.log, e)
	r.mu.Unlock()
	return res, nil
}

// exchanges returns the log so far.
func (r *recorder) exchanges() []exchange {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]exchange(nil), r.log...)
}

// mark is a position in the log, for since.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.log)
}

func (r *recorder) since(mark int) []exchange { return r.exchanges()[mark:] }

func dump(xs []exchange) string {
	var b strings.Builder
	for _, x := range xs {
		b.WriteString("  " + x.String() + "\n")
	}
	return b.String()
}

// checkWireRules asserts what cert-manager's client relies on in every
// exchange: a Replay-Nonce on every POST answer (errors included), and
// problem documents for every error.
func checkWireRules(t *testing.T, rec *recorder) {
	t.Helper()
	for _, x := range rec.exchanges() {
		if x.Method == http.MethodPost && x.Nonce == "" {
			t.Errorf("POST answer without Replay-Nonce: %s", x)
		}
		if x.Status >= 400 && x.Problem == "" {
			t.Errorf("error answer without a problem document: %s", x)
		}
	}
}

// sameHost reports whether two URLs name the same host:port. The Issuer
// controller registers again when the account URL's host differs from the
// directory's.
func sameHost(t *testing.T, a, b string) bool {
	t.Helper()
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	return ua.Host == ub.Host
}

// startResponders starts the challengetest DNS server and http-01 responder.
func startResponders(t *testing.T) (*challengetest.DNS, *challengetest.HTTP01) {
	t.Helper()
	return challengetest.StartDNS(t), challengetest.StartHTTP01(t)
}

// restartAcmed starts acmed again on a fixed port, waiting out a port that
// is briefly still taken.
func restartAcmed(t *testing.T, data string, args []string) *acmed {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		a, err := tryStartAcmed(t, data, args...)
		if err == nil {
			return a
		}
		if !strings.Contains(err.Error(), "address already in use") || time.Now().After(deadline) {
			t.Fatalf("restarting acmed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
