package main

import (
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Challenge types the tool can answer.
const (
	http01    = "http-01"
	dns01     = "dns-01"
	tlsALPN01 = "tls-alpn-01"
)

// Upper bounds on the counts, so that a typo cannot make the tool try to
// hold millions of goroutines or results.
const (
	maxIssuances = 10_000_000
	maxWorkers   = 10_000
)

// config is the parsed command line.
type config struct {
	dir       string
	roots     *x509.CertPool // nil: the system roots
	insecure  bool
	n, c      int
	challenge string
	httpPort  int
	tlsPort   int
	dnsAddr   string
	suffix    string
	timeout   time.Duration
	serverPID int
	poll      time.Duration
}

// usageError is an operator's mistake on the command line: one line that
// names the flag.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return usageError{msg: fmt.Sprintf(format, a...)}
}

// errHelp is -h: the usage was printed and there is nothing else to do.
var errHelp = errors.New("help requested")

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	var caRoot string
	fs := flag.NewFlagSet("acmebench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.dir, "dir", "", "ACME directory URL (required)")
	fs.StringVar(&caRoot, "ca-root", "", "PEM file of the root(s) the server's HTTPS certificate chains to")
	fs.BoolVar(&c.insecure, "insecure", false, "do not verify the server's HTTPS certificate")
	fs.IntVar(&c.n, "n", 100, "issuances in all")
	fs.IntVar(&c.c, "c", 1, "concurrent workers, one account each")
	fs.StringVar(&c.challenge, "challenge", http01, "challenge type: http-01, dns-01 or tls-alpn-01")
	fs.IntVar(&c.httpPort, "http-port", 5002, "port of the http-01 responder on 127.0.0.1 (the server's http-01 port)")
	fs.IntVar(&c.tlsPort, "tls-port", 5001, "port of the tls-alpn-01 responder on 127.0.0.1 (the server's tls-alpn-01 port)")
	fs.StringVar(&c.dnsAddr, "dns-addr", "127.0.0.1:8053", "address of the DNS server (the server's resolver)")
	fs.StringVar(&c.suffix, "suffix", "bench.test", "domain the certificates' names are made under")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "time the whole run may take")
	fs.IntVar(&c.serverPID, "server-pid", 0, "PID of the server, to report its CPU time and peak RSS (Linux)")
	fs.DurationVar(&c.poll, "poll", 25*time.Millisecond, "interval between polls of an authorization or order")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, "usage: acmebench -dir URL [-ca-root FILE | -insecure] -n N -c C -challenge TYPE [flags]")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, errHelp
		}
		// The flag package's messages name the flag and fit on one line.
		return nil, usageError{msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (all settings are flags)", fs.Arg(0))
	}
	if err := c.check(caRoot); err != nil {
		return nil, err
	}
	return c, nil
}

// check validates the flags and loads -ca-root.
func (c *config) check(caRoot string) error {
	if c.dir == "" {
		return usagef("-dir is required (the ACME directory URL)")
	}
	if u, err := url.Parse(c.dir); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return usagef("-dir %q: want an http or https URL", c.dir)
	}
	if caRoot != "" && c.insecure {
		return usagef("-ca-root and -insecure exclude each other")
	}
	if caRoot != "" {
		pool, err := loadRoots(caRoot)
		if err != nil {
			return usagef("-ca-root %s: %s", caRoot, oneLine(err))
		}
		c.roots = pool
	}
	if c.n < 1 || c.n > maxIssuances {
		return usagef("-n %d: want 1 to %d", c.n, maxIssuances)
	}
	if c.c < 1 || c.c > maxWorkers {
		return usagef("-c %d: want 1 to %d", c.c, maxWorkers)
	}
	// More workers than issuances would register accounts that never issue.
	c.c = min(c.c, c.n)
	switch c.challenge {
	case http01, dns01, tlsALPN01:
	default:
		return usagef("-challenge %q: want http-01, dns-01 or tls-alpn-01", c.challenge)
	}
	if c.httpPort < 1 || c.httpPort > 65535 {
		return usagef("-http-port %d: want 1 to 65535", c.httpPort)
	}
	if c.tlsPort < 1 || c.tlsPort > 65535 {
		return usagef("-tls-port %d: want 1 to 65535", c.tlsPort)
	}
	if _, port, err := net.SplitHostPort(c.dnsAddr); err != nil || !validPort(port) {
		return usagef("-dns-addr %q: want HOST:PORT with a port from 1 to 65535", c.dnsAddr)
	}
	c.suffix = strings.TrimSuffix(strings.ToLower(c.suffix), ".")
	if _, ok := dns.IsDomainName(c.suffix); !ok || c.suffix == "" || strings.HasPrefix(c.suffix, ".") || strings.Contains(c.suffix, "*") {
		return usagef("-suffix %q: want a DNS name such as bench.test", c.suffix)
	}
	if c.timeout <= 0 {
		return usagef("-timeout %v: want more than 0", c.timeout)
	}
	if c.poll <= 0 || c.poll > time.Minute {
		return usagef("-poll %v: want more than 0 and at most 1m", c.poll)
	}
	if c.serverPID < 0 {
		return usagef("-server-pid %d: want a process ID", c.serverPID)
	}
	if c.serverPID > 0 {
		if _, err := readServerStats(c.serverPID); err != nil {
			return usagef("-server-pid %d: %s", c.serverPID, oneLine(err))
		}
	}
	return nil
}

func validPort(s string) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p >= 1 && p <= 65535
}

func loadRoots(file string) (*x509.CertPool, error) {
	pemData, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, errors.New("no PEM certificate in the file")
	}
	return pool, nil
}

// oneLine keeps an error on one line, as the flag errors promise.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
