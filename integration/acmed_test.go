// Package integration drives a real acmed process over real HTTPS with real
// ACME clients, DNS and challenge responders on loopback.
package integration

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// acmedBinary is built once per test run by TestMain.
var acmedBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acmed-bin-")
	if err != nil {
		panic(err)
	}
	acmedBinary = filepath.Join(dir, "acmed")
	build := exec.Command("go", "build", "-o", acmedBinary, "github.com/acmed/acmed/cmd/acmed")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		os.RemoveAll(dir)
		panic("building acmed: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running acmed process.
type server struct {
	dir  string // the directory URL
	data string
	log  string // the process's stderr
	root *x509.CertPool
	cmd  *exec.Cmd
}

// startAcmed runs acmed with args and waits for its ready message. The
// process is stopped by PID when the test ends.
func startAcmed(t testing.TB, data string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(acmedBinary, args...)
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
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("acmed log:\n%s", log)
		}
		logFile.Close()
	})

	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "directory:"); ok {
				found <- strings.TrimSpace(u)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	s := &server{data: data, cmd: cmd, log: logFile.Name()}
	select {
	case s.dir = <-found:
	case <-exited:
		log, _ := os.ReadFile(logFile.Name())
		t.Fatalf("acmed exited before it was ready:\n%s", log)
	case <-time.After(30 * time.Second):
		t.Fatal("acmed did not print its directory URL within 30s")
	}
	rootPEM, err := os.ReadFile(filepath.Join(data, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.root = x509.NewCertPool()
	if !s.root.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	return s
}

// httpClient trusts only acmed's root: no InsecureSkipVerify anywhere.
func (s *server) httpClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.root}},
	}
}
