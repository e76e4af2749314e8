package main

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// responders are the peers the server's validation talks to: the DNS
// server (always, for the A records of http-01 and tls-alpn-01 too) and
// the responder of the chosen challenge type.
type responders struct {
	challenge string
	dns       *challengetest.DNS
	http      *challengetest.HTTP01
	alpn      *challengetest.TLSALPN01
}

// startResponders listens on the configured addresses. Only the
// responder of the chosen challenge type is started, so a port the run
// does not need cannot make it fail.
func startResponders(cfg *config) (*responders, error) {
	d, err := challengetest.ListenDNS(cfg.dnsAddr)
	if err != nil {
		return nil, fmt.Errorf("-dns-addr %s: %s", cfg.dnsAddr, oneLine(err))
	}
	r := &responders{challenge: cfg.challenge, dns: d}
	switch cfg.challenge {
	case http01:
		r.http, err = challengetest.ListenHTTP01(loopback(cfg.httpPort))
		if err != nil {
			r.close()
			return nil, fmt.Errorf("-http-port %d: %s", cfg.httpPort, oneLine(err))
		}
	case tlsALPN01:
		r.alpn, err = challengetest.ListenTLSALPN01(loopback(cfg.tlsPort))
		if err != nil {
			r.close()
			return nil, fmt.Errorf("-tls-port %d: %s", cfg.tlsPort, oneLine(err))
		}
	}
	return r, nil
}

func loopback(port int) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

func (r *responders) close() {
	if r.http != nil {
		_ = r.http.Close()
	}
	if r.alpn != nil {
		_ = r.alpn.Close()
	}
	_ = r.dns.Close()
}

// publish makes the responder answer chal for name and returns the
// function that withdraws the answer, so the responders' maps stay small
// however long the run.
func (r *responders) publish(c *acme.Client, name string, chal *acme.Challenge) (withdraw func(), err error) {
	switch r.challenge {
	case http01:
		keyAuth, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		r.http.Set(chal.Token, keyAuth)
		return func() { r.http.Delete(chal.Token) }, nil
	case dns01:
		value, err := c.DNS01ChallengeRecord(chal.Token)
		if err != nil {
			return nil, err
		}
		txt := "_acme-challenge." + name
		r.dns.AddTXT(txt, value)
		return func() { r.dns.RemoveTXT(txt, value) }, nil
	case tlsALPN01:
		// The key authorization is the same string http-01 serves.
		keyAuth, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, err
		}
		if err := r.alpn.Set(name, keyAuth); err != nil {
			return nil, err
		}
		return func() { r.alpn.Delete(name) }, nil
	}
	return nil, errors.New("unknown challenge type " + r.challenge)
}
