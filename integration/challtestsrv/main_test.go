package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const waitTimeout = 30 * time.Second

// TestProgram builds the command once and runs it as the ACME client
// suites do.
func TestProgram(t *testing.T) {
	bin := build(t)
	t.Run("serves", func(t *testing.T) { testServes(t, bin) })
	t.Run("bad flags", func(t *testing.T) { testBadFlags(t, bin) })
}

func build(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "challtestsrv")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// process is a running challtestsrv and the addresses it printed.
type process struct {
	cmd   *exec.Cmd
	addrs map[string]string
	done  chan struct{} // closed once it has exited
	err   error         // how it exited, once done is closed
}

func start(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, addrs: map[string]string{}, done: make(chan struct{})}

	// Lines up to "ready" go to this function; later ones are dropped. The
	// pipe is read to its end before Wait, as os/exec requires.
	lines := make(chan string)
	abandon := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		forward := true
		for sc.Scan() {
			if !forward {
				continue
			}
			select {
			case lines <- sc.Text():
				forward = sc.Text() != "ready"
			case <-abandon:
				forward = false
			}
		}
		close(lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		close(abandon)
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})

	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				<-p.done // stderr is complete only once Wait returns
				t.Fatalf("exited before ready (%v): %s", p.err, stderr.String())
			}
			if line == "ready" {
				return p
			}
			name, addr, found := strings.Cut(line, ": ")
			if !found {
				t.Fatalf("unexpected output %q", line)
			}
			p.addrs[name] = addr
		case <-timer.C:
			t.Fatal("no ready line")
		}
	}
}

// stop sends SIGTERM to the process by its PID and waits for it to exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-timer.C:
		t.Fatal("still running after SIGTERM")
	}
}

func testServes(t *testing.T, bin string) {
	p := start(t, bin, "-dns", "127.0.0.1:0", "-http01", "127.0.0.1:0",
		"-tlsalpn01", "127.0.0.1:0", "-management", "127.0.0.1:0")
	for _, name := range []string{"dns", "http01", "tlsalpn01", "management"} {
		host, port, err := net.SplitHostPort(p.addrs[name])
		if err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("%s address %q", name, p.addrs[name])
		}
	}
	client := &http.Client{Timeout: 5 * time.Second}
	api := "http://" + p.addrs["management"]
	for _, body := range []string{
		`{"host":"_acme-challenge.example.test.","value":"wildcard"}`,
		`{"host":"_acme-challenge.example.test.","value":"base"}`,
	} {
		resp, err := client.Post(api+"/set-txt", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("set-txt: %s %s", resp.Status, msg)
		}
	}

	q := new(dns.Msg)
	q.SetQuestion("_acme-challenge.example.test.", dns.TypeTXT)
	c := &dns.Client{Timeout: 5 * time.Second}
	r, _, err := c.Exchange(q, p.addrs["dns"])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rr := range r.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			got = append(got, strings.Join(txt.Txt, ""))
		}
	}
	if strings.Join(got, ",") != "wildcard,base" {
		t.Fatalf("TXT answer %q, want [wildcard base]", got)
	}

	resp, err := client.Get("http://" + p.addrs["http01"] + "/.well-known/acme-challenge/none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("http01 for an unknown token: %s", resp.Status)
	}
	p.stop(t)
}

func testBadFlags(t *testing.T, bin string) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	// Listeners not under test are off, so that nothing binds fixed ports.
	off := []string{"-dns", "", "-http01", "", "-tlsalpn01", "", "-management", ""}
	tests := []struct {
		name string
		args []string
		flag string // named in the error
	}{
		{"bad IPv4", []string{"-default-ipv4", "nope"}, "-default-ipv4"},
		{"IPv6 as IPv4", []string{"-default-ipv4", "::1"}, "-default-ipv4"},
		{"IPv4 as IPv6", []string{"-default-ipv6", "127.0.0.1"}, "-default-ipv6"},
		{"unknown flag", []string{"-nosuch"}, "-nosuch"},
		{"DNS address", []string{"-dns", "no-port"}, "-dns"},
		{"HTTP01 address", []string{"-http01", "127.0.0.1:99999"}, "-http01"},
		{"management in use", []string{"-management", taken.Addr().String()}, "-management"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append(off, tt.args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Fatalf("exit: %v, want a non-zero status", err)
			}
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.flag) {
				t.Fatalf("stderr %q, want one line naming %s", stderr.String(), tt.flag)
			}
			if strings.Contains(stdout.String(), "ready") {
				t.Fatalf("printed ready: %q", stdout.String())
			}
		})
	}
}
