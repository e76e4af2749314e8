// Package redistest runs Redis servers, clusters and sentinel groups for
// tests, as child processes on loopback ports that are stopped in t.Cleanup.
package redistest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// pollInterval paces every wait in this package: short enough that a
	// test pays little for a state it waits on, long enough not to spin.
	pollInterval = 25 * time.Millisecond
	// startTimeout is generous because CI machines are small and busy, and
	// a restart with AOF replays the whole log before it answers PING.
	startTimeout = 15 * time.Second
	// stopTimeout bounds a graceful shutdown before SIGKILL.
	stopTimeout = 10 * time.Second
	// bindAttempts is how often a fresh start tries another port after
	// losing the race for the one freePort handed out.
	bindAttempts = 5
)

// errBind marks a start that failed only because the port was taken.
var errBind = errors.New("port already in use")

// Server is a Redis for a test.
type Server struct {
	Addr string // host:port
	URL  string // redis://host:port/0, or REDIS_URL as given
	Dir  string // data dir; "" for REDIS_URL

	bin  string
	port int
	pre  []string // before --port: a config file must come first
	args []string // after --port
	proc *proc
}

// proc is one run of a server; Restart makes a new one.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait has returned
	err  error         // cmd.Wait's result, valid after done
}

type options struct {
	aof bool
}

// Option changes what Start runs.
type Option func(*options)

// WithAOF turns on the append-only file with an fsync per write, so a Kill
// loses nothing that was acknowledged: what restart tests rely on.
func WithAOF() Option { return func(o *options) { o.aof = true } }

// Start returns a Redis for tests. REDIS_URL, when set, is used as it is,
// unless an option needs a server of its own (WithAOF: killing a shared
// server is not this test's to do). Otherwise it starts redis-server from
// PATH on a free 127.0.0.1 port with its data in t.TempDir() and waits until
// it answers PING. Without either it skips the test, or fails it when CI is
// "true", where a missing server is a broken setup rather than a choice.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if raw := os.Getenv("REDIS_URL"); raw != "" && !o.aof {
		return external(t, raw)
	}
	bin := need(t, "redis-server", "WithAOF")
	dir := t.TempDir()
	args := baseArgs(dir, "redis.log")
	if o.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	return launch(t, bin, dir, nil, args, false)
}

// need finds a binary on PATH, or skips (fails on CI) the test; what names
// the feature that needs a server of its own when REDIS_URL is set.
func need(t testing.TB, name, what string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found and REDIS_URL not set"
	if os.Getenv("REDIS_URL") != "" {
		msg = name + " not found; REDIS_URL is set, but " + what + " needs a server of its own"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

func external(t testing.TB, raw string) *Server {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		t.Fatalf("redistest: REDIS_URL %q is not a redis://host:port URL", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "6379")
	}
	return &Server{Addr: addr, URL: raw}
}

// baseArgs are what every server of this package runs with: loopback only,
// in the foreground, with everything it writes inside dir.
func baseArgs(dir, logName string) []string {
	return []string{
		"--bind", "127.0.0.1",
		"--daemonize", "no",
		"--dir", dir,
		"--logfile", filepath.Join(dir, logName),
	}
}

// launch starts a server on a fresh port (with a free bus port beside it if
// bus), trying other ports while it loses races for them.
func launch(t testing.TB, bin, dir string, pre, args []string, bus bool) *Server {
	t.Helper()
	s := &Server{Dir: dir, bin: bin, pre: pre, args: args}
	// Registered after t.TempDir so that it runs before the dir is removed,
	// and before the first start so that a start that fails is cleaned too.
	t.Cleanup(func() {
		if forced, err := s.halt(syscall.SIGTERM); err != nil {
			t.Errorf("redistest: stopping %s: %v", s.Addr, err)
		} else if forced {
			t.Logf("redistest: %s ignored SIGTERM for %v and was killed", s.Addr, stopTimeout)
		}
	})
	for attempt := 1; ; attempt++ {
		s.port = freePort(t, bus)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
		s.URL = "redis://" + s.Addr + "/0"
		err := s.spawn()
		if err == nil {
			return s
		}
		if !errors.Is(err, errBind) || attempt == bindAttempts {
			s.fatal(t, "start", err)
		}
		t.Logf("redistest: %s was taken, trying another port", s.Addr)
	}
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.mustRun(t, "Kill")
	if _, err := s.halt(syscall.SIGKILL); err != nil {
		t.Fatalf("redistest: Kill %s: %v", s.Addr, err)
	}
}

// Stop ends the server with SIGTERM, so it flushes its AOF, and waits.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.mustRun(t, "Stop")
	forced, err := s.halt(syscall.SIGTERM)
	if err == nil && forced {
		err = fmt.Errorf("no exit %v after SIGTERM, killed", stopTimeout)
	}
	if err != nil {
		t.Fatalf("redistest: Stop %s: %v", s.Addr, err)
	}
}

// Restart starts a stopped server again on the same port and dir with the
// same arguments and waits until it answers PING.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.mustOwn(t, "Restart")
	if s.running() {
		t.Fatalf("redistest: Restart %s: still running; Stop or Kill it first", s.Addr)
	}
	// The port cannot change, so a bind failure is waited out: whatever
	// holds the port (a client's ephemeral port, most likely) lets go soon.
	deadline := time.Now().Add(startTimeout)
	for {
		err := s.spawn()
		if err == nil {
			return
		}
		if !errors.Is(err, errBind) || time.Now().After(deadline) {
			s.fatal(t, "restart", err)
		}
		time.Sleep(pollInterval)
	}
}

// PID is the process ID of the server's latest run, 0 for REDIS_URL.
func (s *Server) PID() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

func (s *Server) mustOwn(t testing.TB, op string) {
	t.Helper()
	if s.bin == "" {
		t.Fatalf("redistest: %s %s: a REDIS_URL server is not this test's to control; use an option such as WithAOF to get one of its own", op, s.Addr)
	}
}

func (s *Server) mustRun(t testing.TB, op string) {
	t.Helper()
	s.mustOwn(t, op)
	if !s.running() {
		t.Fatalf("redistest: %s %s: not running", op, s.Addr)
	}
}

func (s *Server) running() bool {
	if s.proc == nil {
		return false
	}
	select {
	case <-s.proc.done:
		return false
	default:
		return true
	}
}

func (s *Server) argv() []string {
	a := append([]string{}, s.pre...)
	a = append(a, "--port", strconv.Itoa(s.port))
	return append(a, s.args...)
}

// outFile catches what the server writes before its logfile is open, such
// as a rejected argument.
func (s *Server) outFile() string { return filepath.Join(s.Dir, "redis.out") }

// logFile is the --logfile among the server's arguments.
func (s *Server) logFile() string {
	for i, a := range s.args {
		if a == "--logfile" && i+1 < len(s.args) {
			return s.args[i+1]
		}
	}
	return ""
}

// spawn runs the server once and waits until it answers PING.
func (s *Server) spawn() error {
	logOff, outOff := fileSize(s.logFile()), fileSize(s.outFile())
	out, err := os.OpenFile(s.outFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, s.argv()...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	setProcAttr(cmd)
	err = cmd.Start()
	out.Close()
	if err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	s.proc = p
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(startTimeout)
	for {
		if s.answers(cmd.Process.Pid) {
			return nil
		}
		select {
		case <-p.done:
			text := readFrom(s.logFile(), logOff) + readFrom(s.outFile(), outOff)
			if strings.Contains(text, "Address already in use") {
				return errBind
			}
			return fmt.Errorf("exited before answering PING: %v", p.err)
		case <-time.After(pollInterval):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v", startTimeout)
		}
	}
}

// answers reports whether the server at s.Addr is up and is process pid:
// after losing a port race, a PONG may come from whoever won it.
func (s *Server) answers(pid int) bool {
	if ping(s.Addr) != nil {
		return false
	}
	text, err := info(s.Addr, "server")
	return err == nil && infoField(text, "process_id") == strconv.Itoa(pid)
}

// halt signals the current run and waits for it to exit, escalating to
// SIGKILL after stopTimeout; forced tells whether it had to.
func (s *Server) halt(sig syscall.Signal) (forced bool, err error) {
	if !s.running() {
		return false, nil
	}
	p := s.proc
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return false, err
	}
	select {
	case <-p.done:
		return false, nil
	case <-time.After(stopTimeout):
	}
	if sig != syscall.SIGKILL {
		forced = true
		if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return forced, err
		}
	}
	select {
	case <-p.done:
		return forced, nil
	case <-time.After(stopTimeout):
		return forced, fmt.Errorf("pid %d still running %v after SIGKILL", p.cmd.Process.Pid, stopTimeout)
	}
}

// fatal fails the test with the server's own account of what went wrong.
func (s *Server) fatal(t testing.TB, op string, err error) {
	t.Helper()
	logServers(t, s)
	t.Fatalf("redistest: %s %s (%s): %v", op, s.Addr, strings.Join(s.argv(), " "), err)
}

// logServers puts the tail of each server's logs into the test output, so a
// failure on CI can be read without the machine.
func logServers(t testing.TB, servers ...*Server) {
	t.Helper()
	for _, s := range servers {
		if s == nil || s.Dir == "" {
			continue
		}
		for _, f := range []string{s.logFile(), s.outFile()} {
			if text := tail(readFrom(f, 0), 8<<10); strings.TrimSpace(text) != "" {
				t.Logf("redistest: %s %s:\n%s", s.Addr, f, text)
			}
		}
	}
}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func readFrom(name string, off int64) string {
	b, err := os.ReadFile(name)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}
