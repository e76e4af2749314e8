package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/integration/acmedtest"
)

// buildAcmed builds the server under test; the Go build cache makes this
// cheap after the first time.
func buildAcmed(t *testing.T) string {
	t.Helper()
	bin, err := acmedtest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// ports are the loopback addresses acmebench serves challenges on and
// acmed validates against.
type ports struct {
	http, tls int
	dns       string
}

func freePorts(t *testing.T) ports {
	t.Helper()
	return ports{http: freeTCPPort(t), tls: freeTCPPort(t), dns: freeDNSAddr(t)}
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeDNSAddr finds a port free for both UDP and TCP, as the DNS server
// binds both. Each bench run binds it anew, so it is free between runs:
// it is taken below Linux's ephemeral range (32768-60999), where the UDP
// sockets of the DNS queries other tests make at the same time land; one
// took it between two runs once (CI: "bind: address already in use").
func freeDNSAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(20000+rand.IntN(12000)))
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		pc.Close()
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return ""
}

// acmed is a running acmed process.
type acmed struct {
	dir  string // directory URL
	root string // root.pem
	pid  int
}

// startAcmed runs acmed with its embedded store, validating against p,
// and stops it by PID when the test ends.
func startAcmed(t *testing.T, bin string, p ports) *acmed {
	t.Helper()
	data := t.TempDir()
	proc := acmedtest.Start(t, bin, "serve", "--data", data, "--listen", "127.0.0.1:0",
		"--resolver", p.dns, "--http01-port", strconv.Itoa(p.http), "--tlsalpn01-port", strconv.Itoa(p.tls),
		"--log-level", "warn")
	return &acmed{dir: proc.Directory, root: filepath.Join(data, "root.pem"), pid: proc.Cmd.Process.Pid}
}

func benchArgs(s *acmed, p ports, challenge string, extra ...string) []string {
	args := []string{"-dir", s.dir, "-challenge", challenge,
		"-http-port", strconv.Itoa(p.http), "-tls-port", strconv.Itoa(p.tls), "-dns-addr", p.dns,
		"-timeout", "2m"}
	return append(args, extra...)
}

// runBench runs acmebench in-process and decodes its one stdout line.
func runBench(t *testing.T, args []string) (map[string]any, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	out := stdout.String()
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("stdout is not exactly one line (err %v):\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	var rep map[string]any
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", jerr, out)
	}
	return rep, stderr.String(), err
}

// TestAgainstAcmed runs acmebench in-process against one acmed process.
func TestAgainstAcmed(t *testing.T) {
	p := freePorts(t)
	s := startAcmed(t, buildAcmed(t), p)
	for _, tc := range []struct {
		challenge string
		trust     []string
	}{
		{http01, []string{"-ca-root", s.root}},
		{dns01, []string{"-insecure"}},
		{tlsALPN01, []string{"-ca-root", s.root}},
	} {
		t.Run(tc.challenge, func(t *testing.T) { testIssuance(t, s, p, tc.challenge, tc.trust) })
	}
	t.Run("without -server-pid", func(t *testing.T) { testWithoutServerPID(t, s, p) })
	t.Run("failing validation", func(t *testing.T) { testFailedIssuances(t, s, p) })
}

func testIssuance(t *testing.T, s *acmed, p ports, challenge string, trust []string) {
	const n, c = 6, 2
	args := append(benchArgs(s, p, challenge, "-n", strconv.Itoa(n), "-c", strconv.Itoa(c),
		"-server-pid", strconv.Itoa(s.pid)), trust...)
	rep, stderr, err := runBench(t, args)
	if err != nil {
		t.Fatalf("run: %v\nreport: %v\nstderr:\n%s", err, rep, stderr)
	}
	if rep["ok"] != float64(n) || rep["failures"] != float64(0) {
		t.Fatalf("ok=%v failures=%v, want %d and 0: %v", rep["ok"], rep["failures"], n, rep)
	}
	if errs, _ := rep["errors"].([]any); errs == nil || len(errs) != 0 {
		t.Errorf("errors = %v, want []", rep["errors"])
	}
	p50, p90, p99 := num(t, rep, "p50_ms"), num(t, rep, "p90_ms"), num(t, rep, "p99_ms")
	if !(0 < p50 && p50 <= p90 && p90 <= p99) {
		t.Errorf("percentiles p50=%v p90=%v p99=%v, want 0 < p50 <= p90 <= p99", p50, p90, p99)
	}
	// At least new-order, authorization, response, finalize and download
	// per issuance.
	if r := num(t, rep, "http_requests_per_issuance"); r < 5 {
		t.Errorf("http_requests_per_issuance = %v, want >= 5", r)
	}
	if num(t, rep, "issuances_per_sec") <= 0 {
		t.Errorf("issuances_per_sec = %v, want > 0", rep["issuances_per_sec"])
	}
	if rep["concurrency"] != float64(c) || rep["challenge"] != challenge {
		t.Errorf("concurrency=%v challenge=%v, want %d %s", rep["concurrency"], rep["challenge"], c, challenge)
	}
	if num(t, rep, "server_cpu_seconds_per_issuance") < 0 {
		t.Errorf("server_cpu_seconds_per_issuance = %v", rep["server_cpu_seconds_per_issuance"])
	}
	if num(t, rep, "server_peak_rss_mb") <= 0 {
		t.Errorf("server_peak_rss_mb = %v, want > 0", rep["server_peak_rss_mb"])
	}
	if !strings.Contains(stderr, "ok=6 fail=0") {
		t.Errorf("no final progress line on stderr:\n%s", stderr)
	}
}

// testWithoutServerPID: the server figures are left out, not zero.
func testWithoutServerPID(t *testing.T, s *acmed, p ports) {
	rep, stderr, err := runBench(t, benchArgs(s, p, http01, "-n", "2", "-c", "1", "-ca-root", s.root))
	if err != nil {
		t.Fatalf("run: %v\nstderr:\n%s", err, stderr)
	}
	for _, k := range []string{"server_cpu_seconds_per_issuance", "server_peak_rss_mb"} {
		if _, ok := rep[k]; ok {
			t.Errorf("%s present without -server-pid: %v", k, rep)
		}
	}
}

// testFailedIssuances: a validation that cannot succeed (acmed connects to
// a port nothing serves) is reported, and run says so for the exit status.
func testFailedIssuances(t *testing.T, s *acmed, p ports) {
	wrong := p
	wrong.tls = freeTCPPort(t)
	rep, stderr, err := runBench(t, benchArgs(s, wrong, tlsALPN01, "-n", "2", "-c", "1", "-ca-root", s.root))
	if !errors.Is(err, errIssuancesFailed) {
		t.Fatalf("run: %v, want errIssuancesFailed\nstderr:\n%s", err, stderr)
	}
	if rep["ok"] != float64(0) || rep["failures"] != float64(2) {
		t.Errorf("ok=%v failures=%v, want 0 and 2", rep["ok"], rep["failures"])
	}
	errs, _ := rep["errors"].([]any)
	if len(errs) == 0 || len(errs) > maxErrors {
		t.Errorf("errors = %v, want 1 to %d messages", rep["errors"], maxErrors)
	}
	t.Logf("errors: %v", errs)
}

func num(t *testing.T, rep map[string]any, key string) float64 {
	t.Helper()
	v, ok := rep[key].(float64)
	if !ok {
		t.Fatalf("%s = %v (%T), want a number; report %v", key, rep[key], rep[key], rep)
	}
	return v
}

func TestFlagErrors(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, []byte("not PEM\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := []string{"-dir", "https://127.0.0.1:1/directory"}
	for _, tc := range []struct {
		name string
		args []string
		flag string // the message must name it
	}{
		{"missing -dir", nil, "-dir"},
		{"-dir not a URL", []string{"-dir", "localhost:14000"}, "-dir"},
		{"-dir ftp", []string{"-dir", "ftp://localhost/directory"}, "-dir"},
		{"bad -challenge", append(dir, "-challenge", "http-02"), "-challenge"},
		{"-n 0", append(dir, "-n", "0"), "-n"},
		{"-n negative", append(dir, "-n", "-3"), "-n"},
		{"-n not a number", append(dir, "-n", "many"), "-n"},
		{"-c 0", append(dir, "-c", "0"), "-c"},
		{"-c huge", append(dir, "-c", "1000000"), "-c"},
		{"-ca-root and -insecure", append(dir, "-ca-root", root, "-insecure"), "-ca-root"},
		{"-ca-root missing file", append(dir, "-ca-root", filepath.Join(t.TempDir(), "none.pem")), "-ca-root"},
		{"-ca-root not PEM", append(dir, "-ca-root", root), "-ca-root"},
		{"-http-port 0", append(dir, "-http-port", "0"), "-http-port"},
		{"-tls-port too big", append(dir, "-tls-port", "70000"), "-tls-port"},
		{"-dns-addr without port", append(dir, "-dns-addr", "127.0.0.1"), "-dns-addr"},
		{"-suffix not a name", append(dir, "-suffix", "a..b"), "-suffix"},
		{"-suffix empty", append(dir, "-suffix", ""), "-suffix"},
		{"-timeout 0", append(dir, "-timeout", "0s"), "-timeout"},
		{"-poll 0", append(dir, "-poll", "0s"), "-poll"},
		{"-server-pid negative", append(dir, "-server-pid", "-1"), "-server-pid"},
		{"-server-pid no such process", append(dir, "-server-pid", "2147483647"), "-server-pid"},
		{"unknown flag", append(dir, "-concurrency", "3"), "-concurrency"},
		{"positional argument", append(dir, "extra"), "extra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tc.args, &stdout, &stderr)
			var usage usageError
			if !errors.As(err, &usage) {
				t.Fatalf("err = %v (%T), want a usageError", err, err)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, tc.flag) {
				t.Errorf("error %q does not name %s", msg, tc.flag)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout not empty: %q", stdout.String())
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := percentile(d, tc.p); got != tc.want {
			t.Errorf("p%d = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(d[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %v, want 1ms", got)
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of none = %v, want 0", got)
	}
}

func TestParseProc(t *testing.T) {
	// A command name with spaces and a parenthesis must not shift fields.
	stat := []byte("4242 (acmed (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n")
	ticks, err := parseCPUTicks(stat)
	if err != nil || ticks != 325 {
		t.Errorf("parseCPUTicks = %d, %v; want 325", ticks, err)
	}
	status := []byte("Name:\tacmed\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10000 kB\n")
	hwm, err := parseVmHWM(status)
	if err != nil || hwm != 20480 {
		t.Errorf("parseVmHWM = %d, %v; want 20480", hwm, err)
	}
	if _, err := parseVmHWM([]byte("Name:\tz\nState:\tZ (zombie)\n")); err == nil {
		t.Error("parseVmHWM of a zombie: no error")
	}
}
