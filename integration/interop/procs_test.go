package interop

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a background process of a test.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited
	err  error         // its exit, once done

	mu  sync.Mutex
	dir string // the directory URL from acmed's ready line
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) readyURL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dir
}

// start runs a long-lived process (acmed, Caddy) in its own process group
// with its output appended to logPath; it is stopped by PID when the test
// ends: SIGTERM to the group, SIGKILL after stopTimeout.
func (e *env) start(name, logPath string, environ []string, bin string, args ...string) *proc {
	t := e.t
	t.Helper()
	logF, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logF, "==== %s $ %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), environ...)
	cmd.Stderr = logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		logF.Close()
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	copied := make(chan struct{})
	go func() {
		// Stdout goes to the log too; acmed's ready line is picked out.
		defer close(copied)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logF, line)
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "directory:"); ok {
				p.mu.Lock()
				p.dir = strings.TrimSpace(u)
				p.mu.Unlock()
			}
		}
		_, _ = io.Copy(logF, stdout)
	}()
	go func() {
		<-copied
		p.err = cmd.Wait()
		logF.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// stop ends the process group by the leader's PID and waits for it.
func (p *proc) stop(t testing.TB) {
	if p.exited() {
		return
	}
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(stopTimeout):
	}
	t.Logf("%s (pid %d) ignored SIGTERM for %v; killing it", p.name, pid, stopTimeout)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Errorf("%s (pid %d) still running after SIGKILL", p.name, pid)
	}
}

// run runs a client command to completion within clientTimeout, its output
// appended to logPath. A non-zero exit fails the test.
func (e *env) run(t testing.TB, logPath string, environ []string, bin string, args ...string) {
	t.Helper()
	if err := e.runErr(t, logPath, environ, bin, args...); err != nil {
		t.Fatalf("%s %s: %v (its output is in %s)", filepath.Base(bin), strings.Join(args, " "), err, logPath)
	}
}

func (e *env) runErr(t testing.TB, logPath string, environ []string, bin string, args ...string) error {
	t.Helper()
	logF, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logF.Close()
	fmt.Fprintf(logF, "==== %s $ %s %s\n", time.Now().Format(time.RFC3339), bin, strings.Join(args, " "))
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), environ...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = logF, logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// The client and whatever it started (hooks) go together.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = stopTimeout
	start := time.Now()
	err = cmd.Run()
	fmt.Fprintf(logF, "==== exit: %v after %v\n", errOrOK(err), time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		return fmt.Errorf("no exit within %v: %w", clientTimeout, err)
	}
	return err
}

// runFails runs a client that must fail, and returns what it wrote in
// that run, for the test to find acmed's problem in.
func (e *env) runFails(t testing.TB, logPath string, environ []string, bin string, args ...string) string {
	t.Helper()
	from := fileSize(logPath)
	if err := e.runErr(t, logPath, environ, bin, args...); err == nil {
		t.Fatalf("%s %s succeeded; want it refused (its output is in %s)", filepath.Base(bin), strings.Join(args, " "), logPath)
	}
	return readFrom(t, logPath, from)
}

// fileSize is the size of path, 0 if it does not exist.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom reads path from offset on: what was appended to it since its
// size was offset.
func readFrom(t testing.TB, path string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

func errOrOK(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

// writeScript writes an executable shell script into the test's temp dir.
func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitLog waits until acmed's log has a line containing every one of parts
// and returns it.
func (e *env) waitLog(t testing.TB, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(logWait)
	for {
		b, _ := os.ReadFile(e.acmed.log)
		for line := range strings.SplitSeq(string(b), "\n") {
			if containsAll(line, parts) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("acmed's log has no line with %q after %v", parts, logWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logLines are the lines of acmed's log containing every one of parts.
func (e *env) logLines(parts ...string) []string {
	b, _ := os.ReadFile(e.acmed.log)
	var out []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if containsAll(line, parts) {
			out = append(out, line)
		}
	}
	return out
}

func containsAll(line string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(line, p) {
			return false
		}
	}
	return true
}
