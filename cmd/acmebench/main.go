// Command acmebench measures how fast an ACME (RFC 8555) server issues
// certificates. It serves the challenge responses itself — an authoritative
// DNS server, an http-01 and a tls-alpn-01 responder on loopback — so the
// server under test only needs its validation ports and resolver pointed at
// it:
//
//	acmed serve --resolver 127.0.0.1:8053 --http01-port 5002 --tlsalpn01-port 5001
//	acmebench -dir https://localhost:14000/directory -ca-root acmed-data/root.pem \
//	    -n 200 -c 8 -challenge http-01
//
// C workers each register one account (not timed), then issue N
// certificates between them. Progress goes to stderr about every second;
// the result is one JSON line on stdout. The exit status is 0 when every
// issuance succeeded, 1 otherwise, 2 for a bad flag.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var usage usageError
	switch {
	case err == nil:
	case errors.As(err, &usage):
		fmt.Fprintf(os.Stderr, "acmebench: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "acmebench: %v\n", err)
		os.Exit(1)
	}
}

// run is acmebench without the process, so tests can drive it in-process.
// It returns a usageError for a bad flag and errIssuancesFailed when the
// report was printed but not every issuance succeeded.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	resp, err := startResponders(cfg)
	if err != nil {
		return err
	}
	defer resp.close()

	counter := &countingTransport{next: newTransport(cfg)}
	defer counter.next.CloseIdleConnections()
	hc := newHTTPClient(counter)

	workers, err := registerAll(ctx, cfg, hc)
	if err != nil {
		return err
	}

	res, err := runTimed(ctx, cfg, workers, resp, counter, stderr)
	if err != nil {
		return err
	}
	if err := writeReport(stdout, res.report(cfg)); err != nil {
		return err
	}
	if res.ok < cfg.n {
		return fmt.Errorf("%w: %d of %d", errIssuancesFailed, cfg.n-res.ok, cfg.n)
	}
	return nil
}

// errIssuancesFailed means the run completed and reported, but some
// issuances did not succeed.
var errIssuancesFailed = errors.New("issuances failed")
