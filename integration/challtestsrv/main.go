// Command challtestsrv serves the challenge responders of package
// challengetest to real ACME clients run against acmed: an authoritative
// DNS server, http-01 and tls-alpn-01 responders, and a JSON management API
// (see challengetest.NewAPI) through which the clients' hooks publish
// dns-01 TXT records.
//
//	challtestsrv -dns 127.0.0.1:8053 -http01 127.0.0.1:5002 \
//	    -tlsalpn01 127.0.0.1:5001 -management 127.0.0.1:8055
//
// It prints one "name: host:port" line per listener (so port 0 can be
// used), then "ready", and serves until SIGINT or SIGTERM. Point acmed's
// resolver at the dns address: every name resolves to 127.0.0.1 (see
// -default-ipv4 and -default-ipv6).
//
// certbot (dns-01 through its manual hooks, which get CERTBOT_DOMAIN and
// CERTBOT_VALIDATION; the cleanup hook removes only its own value, so a
// wildcard and its base name can be validated together):
//
//	certbot certonly --manual --preferred-challenges dns-01 -n \
//	  --manual-auth-hook 'curl -sf -d "{\"fqdn\":\"_acme-challenge.$CERTBOT_DOMAIN.\",\"value\":\"$CERTBOT_VALIDATION\"}" http://127.0.0.1:8055/present' \
//	  --manual-cleanup-hook 'curl -sf -d "{\"fqdn\":\"_acme-challenge.$CERTBOT_DOMAIN.\",\"value\":\"$CERTBOT_VALIDATION\"}" http://127.0.0.1:8055/cleanup' \
//	  ...
//
// lego with its httpreq provider, which posts {"fqdn","value"} to
// $HTTPREQ_ENDPOINT/present and /cleanup itself. lego's default
// propagation check asks the zone's NS on port 53, so turn it off and let
// it check through this server instead:
//
//	HTTPREQ_ENDPOINT=http://127.0.0.1:8055 lego --dns httpreq \
//	  --dns.resolvers 127.0.0.1:8053 --dns.propagation-disable-ans ...
//
// lego with its exec provider, EXEC_PATH=./hook.sh, where hook.sh is called
// as "present|cleanup <fqdn> <value>":
//
//	#!/bin/sh
//	exec curl -sf -d "{\"fqdn\":\"$2\",\"value\":\"$3\"}" "http://127.0.0.1:8055/$1"
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/acmed/acmed/challenges/challengetest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	dns, http01, tlsalpn01, management string
	defaults                           []netip.Addr
}

// run serves until ctx ends and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "challtestsrv:", err)
		return 2
	}
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}()
	fail := func(flagName string, err error) int {
		fmt.Fprintf(stderr, "challtestsrv: -%s: %v\n", flagName, err)
		return 1
	}

	var d *challengetest.DNS
	if cfg.dns != "" {
		if d, err = challengetest.ListenDNS(cfg.dns); err != nil {
			return fail("dns", err)
		}
		closers = append(closers, d.Close)
		d.SetDefault(cfg.defaults...)
		fmt.Fprintln(stdout, "dns:", d.Addr)
	}
	var h *challengetest.HTTP01
	if cfg.http01 != "" {
		if h, err = challengetest.ListenHTTP01(cfg.http01); err != nil {
			return fail("http01", err)
		}
		closers = append(closers, h.Close)
		fmt.Fprintln(stdout, "http01:", h.Addr)
	}
	var a *challengetest.TLSALPN01
	if cfg.tlsalpn01 != "" {
		if a, err = challengetest.ListenTLSALPN01(cfg.tlsalpn01); err != nil {
			return fail("tlsalpn01", err)
		}
		closers = append(closers, a.Close)
		fmt.Fprintln(stdout, "tlsalpn01:", a.Addr)
	}
	if cfg.management != "" {
		addr, closeAPI, err := serveAPI(cfg.management, challengetest.NewAPI(d, h, a))
		if err != nil {
			return fail("management", err)
		}
		closers = append(closers, closeAPI)
		fmt.Fprintln(stdout, "management:", addr)
	}
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("challtestsrv", flag.ContinueOnError)
	// The flag package's own report spans several lines; run prints one.
	fs.SetOutput(io.Discard)
	cfg := &config{}
	fs.StringVar(&cfg.dns, "dns", "127.0.0.1:8053", "DNS server address, UDP and TCP (\"\" disables)")
	fs.StringVar(&cfg.http01, "http01", "127.0.0.1:5002", "http-01 responder address (\"\" disables)")
	fs.StringVar(&cfg.tlsalpn01, "tlsalpn01", "127.0.0.1:5001", "tls-alpn-01 responder address (\"\" disables)")
	fs.StringVar(&cfg.management, "management", "127.0.0.1:8055", "management API address (\"\" disables)")
	v4 := fs.String("default-ipv4", "127.0.0.1", "A record of every name not given its own (\"\" for none)")
	v6 := fs.String("default-ipv6", "", "AAAA record of every name not given its own (\"\" for none)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fs.PrintDefaults()
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range []struct{ name, value, family string }{
		{"default-ipv4", *v4, "4"},
		{"default-ipv6", *v6, "6"},
	} {
		if f.value == "" {
			continue
		}
		ip, err := netip.ParseAddr(f.value)
		if err != nil || ip.Unmap().Is4() != (f.family == "4") || ip.Zone() != "" {
			return nil, fmt.Errorf("-%s: %q is not an IPv%s address", f.name, f.value, f.family)
		}
		cfg.defaults = append(cfg.defaults, ip)
	}
	return cfg, nil
}

// serveAPI starts the management API on addr and returns the address it
// listens on and how to stop it.
func serveAPI(addr string, handler http.Handler) (string, func() error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	go func() { _ = srv.Serve(ln) }()
	closeAPI := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	}
	return ln.Addr().String(), closeAPI, nil
}
