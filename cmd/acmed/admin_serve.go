package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/acmed/acmed/acme/admin"
	"github.com/acmed/acmed/acme/authority"
)

// adminAuth is how the admin API authenticates operators, read from the
// files --admin-token-file and --admin-client-ca name.
type adminAuth struct {
	token     string
	clientCAs *x509.CertPool
}

// loadAdminAuth reads the admin API's credentials before anything else
// starts, so that a bad file stops serve at once with one line.
func loadAdminAuth(c config) (adminAuth, error) {
	var a adminAuth
	if c.AdminListen == "" {
		return a, nil
	}
	if path := c.AdminTokenFile; path != "" {
		fi, err := os.Stat(path)
		if err != nil {
			return a, fmt.Errorf("--admin-token-file: %w", err)
		}
		// Mode bits, not a read attempt: acmed often runs as root, who
		// can read anything.
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			return a, fmt.Errorf("--admin-token-file %s: mode %04o lets group or others read the token; chmod 600 %s", path, perm, path)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return a, fmt.Errorf("--admin-token-file: %w", err)
		}
		a.token = strings.TrimSpace(string(raw))
		if a.token == "" {
			return a, fmt.Errorf("--admin-token-file %s: the file is empty (make a token with: openssl rand -hex 32)", path)
		}
	}
	if path := c.AdminClientCA; path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return a, fmt.Errorf("--admin-client-ca: %w", err)
		}
		a.clientCAs = x509.NewCertPool()
		if !a.clientCAs.AppendCertsFromPEM(raw) {
			return a, fmt.Errorf("--admin-client-ca %s: holds no PEM certificate", path)
		}
	}
	return a, nil
}

// adminServer is the admin API's own listener and http.Server.
type adminServer struct {
	srv  *http.Server
	url  string
	once sync.Once
}

// startAdmin serves the admin API on --admin-listen with a certificate
// from acmed's own CA, so `acmed admin` trusts it through root.pem. It
// returns nil when the admin API is off.
func startAdmin(c config, a adminAuth, auth *authority.Authority, signer caBackend, base *url.URL, log *slog.Logger) (*adminServer, error) {
	if c.AdminListen == "" {
		return nil, nil
	}
	handler, err := admin.New(admin.Config{Authority: auth, Token: a.token, ClientCAs: a.clientCAs, Logger: log})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", c.AdminListen)
	if err != nil {
		return nil, fmt.Errorf("--admin-listen %s: %w", c.AdminListen, err)
	}
	hosts := serverHosts(base)
	if h, _, err := net.SplitHostPort(c.AdminListen); err == nil && h != "" {
		if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
			hosts = append(hosts, h)
		}
	}
	cert, err := signer.ServerCertificate(hosts)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin server certificate: %w", err)
	}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if a.clientCAs != nil {
		// IfGiven, not Require: a token holder sends no certificate. A
		// certificate that is sent must chain to --admin-client-ca.
		tlsConfig.ClientCAs, tlsConfig.ClientAuth = a.clientCAs, tls.VerifyClientCertIfGiven
	}
	s := &adminServer{
		srv: &http.Server{
			Handler:           handler,
			TLSConfig:         tlsConfig,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      10 * time.Minute, // a backup streams for a while
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		url: adminURL(ln.Addr()),
	}
	go func() {
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin API", "err", err)
		}
	}()
	log.Info("serving the admin API", "url", s.url, "token", a.token != "", "client_certificates", a.clientCAs != nil)
	return s, nil
}

// stop ends the admin API: requests in flight get timeout to finish.
// Safe to call more than once, and on nil.
func (s *adminServer) stop(timeout time.Duration) {
	if s == nil {
		return
	}
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
		}
	})
}

// adminURL is the admin API's base URL for the address bound.
func adminURL(addr net.Addr) string {
	host := "localhost"
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return "https://" + addr.String() + admin.Prefix
	}
	if !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		host = tcp.IP.String()
	}
	return "https://" + net.JoinHostPort(host, fmt.Sprint(tcp.Port)) + admin.Prefix
}
