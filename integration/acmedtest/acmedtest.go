// Package acmedtest runs acmed as a real process for tests: it builds the
// binary, starts it, waits for its ready line, and stops it by PID when the
// test ends, showing its log if the test failed.
package acmedtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Build compiles acmed into dir; for TestMain, which has no testing.TB.
// It builds in acmed's own module, whatever module the caller's tests are
// in, so the binary has exactly the dependencies acmed ships with.
func Build(dir string) (string, error) {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("building acmed: cannot locate the acmed module")
	}
	bin := filepath.Join(dir, "acmed")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/acmed/acmed/cmd/acmed")
	cmd.Dir = filepath.Join(filepath.Dir(self), "..", "..") // integration/acmedtest → repository root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building acmed: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a running acmed.
type Process struct {
	Directory string // the directory URL it printed
	AdminURL  string // the admin API's URL it printed, if serving one
	// MetricsURL is the /metrics URL it printed, if serving metrics.
	MetricsURL string
	Log        string // its stderr
	Cmd        *exec.Cmd
	exited     chan struct{}
}

// Start runs bin with args (e.g. "serve", "--data", dir, …) and returns once
// acmed prints its directory URL; it fails the test if acmed exits first or
// stays silent for 30 s. The process runs with ACMED_DRAIN_DELAY=0s, so
// that stopping it at the end of a test does not wait out the default
// drain delay; a --drain-delay flag in args overrides that.
func Start(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "ACMED_DRAIN_DELAY=0s")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "acmed.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Process{Log: logFile.Name(), Cmd: cmd, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("acmed log:\n%s", p.ReadLog())
		}
		logFile.Close()
	})

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// Printed before the directory line, so set before Start returns.
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "admin API:"); ok {
				p.AdminURL = strings.TrimSpace(u)
			}
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "metrics:"); ok {
				p.MetricsURL = strings.TrimSpace(u)
			}
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "directory:"); ok {
				found <- strings.TrimSpace(u)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case p.Directory = <-found:
	case <-p.exited:
		t.Fatalf("acmed exited before it was ready:\n%s", p.ReadLog())
	case <-time.After(30 * time.Second):
		t.Fatal("acmed did not print its directory URL within 30s")
	}
	return p
}

// Stop ends the process with SIGTERM, or SIGKILL after 20 s, and waits.
func (p *Process) Stop() {
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.Cmd.Process.Kill()
		<-p.exited
	}
}

// Done is closed once the process has exited; Cmd.ProcessState then
// holds its exit status.
func (p *Process) Done() <-chan struct{} { return p.exited }

// ReadLog returns what acmed wrote to stderr so far.
func (p *Process) ReadLog() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}
