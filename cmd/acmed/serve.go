package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
	"github.com/acmed/acmed/storage/redis"
)

func initCA(c config, stdout io.Writer) error {
	if c.importing() {
		return importCA(c, stdout)
	}
	if c.IntermediateCSR != "" {
		return intermediateCSR(c, stdout)
	}
	if c.installing() {
		return installIntermediate(c, stdout)
	}
	switch c.CABackend {
	case backendPKCS11:
		return initPKCS11(c, stdout)
	case backendVault:
		return initVault(c, stdout)
	}
	err := ca.Init(c.Data, ca.Config{})
	if errors.Is(err, ca.ErrExists) && c.ExistOK {
		fmt.Fprintf(stdout, "CA already exists in %s\n", c.Data)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created CA in %s (root certificate %s)\n", c.Data, filepath.Join(c.Data, "root.pem"))
	return nil
}

func serve(ctx context.Context, c config, stdout, stderr io.Writer) error {
	log, err := newLogger(c.LogLevel, stderr)
	if err != nil {
		return err
	}
	adminCreds, err := loadAdminAuth(c)
	if err != nil {
		return err
	}
	// Opened first: a damaged chain stops acmed before it serves. With
	// --audit-log -, standard output carries the chain alone, and what
	// acmed prints for people goes to standard error.
	auditLog, err := openAudit(c, stdout)
	if err != nil {
		return err
	}
	if auditLog != nil {
		defer auditLog.Close()
	}
	if c.AuditLog == "-" {
		stdout = stderr
	}
	var auditSink authority.AuditSink
	if auditLog != nil {
		auditSink = auditLog
	}
	// go-redis logs connection trouble through a process-wide logger; route
	// it into ours, where an outage is already reported once per request.
	goredis.SetLogger(redisLogger{log})
	authorityCA, closeCA, err := loadCA(c, log)
	if err != nil {
		return err
	}
	defer closeCA()
	store, err := openStore(ctx, c, log)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := claimCA(ctx, c, store, authorityCA, log); err != nil {
		return err
	}
	met, store := newMetrics(c, store, log)

	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	defer ln.Close()
	base, err := externalURL(c.ExternalURL, ln.Addr())
	if err != nil {
		return err
	}
	// The CA's issuers as the store has them: a replica started after a
	// rotation signs with the new intermediate; one running follows a
	// rotation within issuerPoll.
	// With --ca-backend vault there is no issuer set: Vault signs,
	// rotates its own issuers and publishes their CRLs and OCSP, so
	// issuerSet, crls and authIssuers stay nil.
	var issuerSet *issuers
	var authIssuers authority.Issuers
	var signer authority.Signer = authorityCA
	intermediates := []*x509.Certificate{authorityCA.Intermediate()}
	serverCA := authorityCA
	if local, ok := authorityCA.(*ca.Local); ok {
		issuerSet, err = startIssuers(ctx, c, store, local, crlBase(c, base), log)
		if err != nil {
			return err
		}
		defer issuerSet.close()
		authIssuers, signer = issuerSet, issuerSet.rot
		intermediates, serverCA = issuerSet.intermediates(), issuerSet.rot.Set().Active
	}
	// Checked against every intermediate the CA signs with or signed
	// with (a bundle may cross-sign a rotated one).
	alternates, err := loadAlternates(c, intermediates, log)
	if err != nil {
		return err
	}
	cert, err := serverCA.ServerCertificate(serverHosts(base))
	if err != nil {
		return fmt.Errorf("server certificate: %w", err)
	}

	blocked, _ := c.blockedNetworks() // checked with the rest of the config
	allowed, _ := c.allowedNetworks()
	identifiers, _ := c.identifierPolicy()
	eabMode, _ := authority.ParseEABMode(c.EAB)
	profiles, _ := c.profileSet()
	redirects := c.ValidationMaxRedirects
	if redirects == 0 {
		redirects = -1 // the validator reads 0 as its default
	}
	var crls *crl.Set
	var crlSource api.CRLSource
	if issuerSet != nil {
		if crls, err = newCRLPublisher(c, store, issuerSet, base, log); err != nil {
			return err
		}
		crlSource = crls
	}
	limiter, _ := store.(storage.Limiter) // both backends are
	var observe authority.Metrics
	var instrument func(string, http.Handler) http.Handler
	if met != nil {
		observe, instrument = met, met.Instrument
	}
	auth, err := authority.New(authority.Config{
		Store:  store,
		Signer: signer,
		Validator: challenges.New(challenges.Config{
			Resolver: challenges.NewResolver(c.Resolvers...), HTTPPort: c.HTTP01Port, TLSALPNPort: c.TLSALPN01Port,
			Timeout: c.ValidationTimeout, MaxRedirects: redirects, MaxBody: c.ValidationMaxBody,
			MaxConcurrent: c.ValidationMaxConcurrent, MaxPerAccount: c.ValidationMaxPerAccount,
			BlockedNetworks: blocked, AllowedNetworks: allowed, HTTPSPort: c.ValidationHTTPSPort,
		}),
		Logger:                log,
		CertValidity:          c.CertValidity,
		Profiles:              profiles,
		TermsOfService:        c.TermsOfService,
		DisableAuthzReuse:     !c.AuthzReuse,
		IdentifierPolicy:      identifiers,
		Limiter:               limiter, // limits live in the store, shared by replicas
		Limits:                c.RateLimits.get(),
		EAB:                   eabMode,
		Metrics:               observe,
		OCSPServer:            ocspServer(c, base),
		CRLDistributionPoints: nil, // the signer names the CRL of the issuer that signs
		Audit:                 auditSink,
		Issuers:               authIssuers,
		Revoker:               vaultRevoker(authorityCA),
	})
	if err != nil {
		return err
	}
	// The OCSP responder (nil without --ocsp), mounted on the ACME
	// listener and on the plain-HTTP listener for relying parties
	// (--crl-listen) alike, below: responder.Route(ocspHandler, …).
	ocspHandler, err := newOCSP(c, issuerSet, auth, instrument, log)
	if err != nil {
		return err
	}
	auditSrv := newAuditServer(auditLog, log, c, profiles)

	drain := &drainer{log: log}
	handler := api.New(api.Config{
		Authority: auth, BaseURL: base.String(), RootsPEM: authorityCA.RootPEM(), Logger: log,
		Ready: drain.ready(readiness(store.Ping, authorityCA)), Website: c.Website, TermsOfService: c.TermsOfService,
		CAAIdentities: splitList(c.CAAIdentities), ExternalAccountRequired: auth.EABRequired(),
		Instrument: instrument, CRLs: crlSource, Alternates: alternates,
	})
	var acmeHandler, revHandler http.Handler = handler, handler.RevocationHandler()
	if ocspHandler != nil {
		acmeHandler = responder.Route(ocspHandler, acmeHandler)
		revHandler = responder.Route(ocspHandler, revHandler)
	}
	srv := &http.Server{
		Handler:           drain.handler(acmeHandler),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	revSrv, err := serveRevocation(c.CRLListen, revHandler, log)
	if err != nil {
		return err
	}
	defer revSrv.stop(c.ShutdownTimeout)

	adminSrv, err := startAdmin(c, adminCreds, auth, authorityCA, base, log)
	if err != nil {
		return err
	}
	defer adminSrv.stop(c.ShutdownTimeout)

	if c.DebugListen != "" {
		stop, err := serveDebug(c.DebugListen, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	metricsURL := ""
	if met != nil {
		msrv, err := met.Serve(c.MetricsListen)
		if err != nil {
			return err
		}
		defer msrv.Stop()
		metricsURL = msrv.URL()
	}
	stopAlerts, err := startAlerts(c, store, met, log)
	if err != nil {
		return err
	}
	defer stopAlerts()
	stopCRL, stopIssuers := func() {}, func() {}
	if issuerSet != nil {
		stopCRL, stopIssuers = runCRL(crls), runBackground(issuerSet.run)
	}
	defer stopCRL()
	defer stopIssuers()

	// The job worker outlives the signal: it stops once no request is
	// served any more, below.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- auth.Run(workerCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.ServeTLS(ln, "", "") }()

	auditSrv.started(ctx)
	if adminSrv != nil {
		fmt.Fprintf(stdout, "admin API: %s\n", adminSrv.url)
	}
	if metricsURL != "" {
		fmt.Fprintf(stdout, "metrics: %s\n", metricsURL)
	}
	if issuerSet != nil {
		fmt.Fprintf(stdout, "CRL: %s\n", crls.DistributionPoint(issuerSet.rot.Set().Active.Name()))
	}
	if revSrv != nil {
		fmt.Fprintf(stdout, "CRL listener: %s\n", revSrv.url)
	}
	root := filepath.Join(c.Data, "root.pem")
	dir := base.String() + "/directory"
	fmt.Fprintf(stdout, "acmed is ready\n  directory:        %s\n  root certificate: %s\n  try: REQUESTS_CA_BUNDLE=%s certbot certonly --server %s --standalone -d host.example.internal --register-unsafely-without-email --agree-tos\n",
		dir, root, root, dir)

	select {
	case err = <-serveDone:
	case <-ctx.Done():
		err = drain.stop(srv, c.DrainDelay, c.ShutdownTimeout)
	case <-auditSrv.broken():
		// Fail closed: a CA whose actions can no longer be recorded
		// stops taking requests.
		log.Error("stopping: the audit log cannot be written", "err", auditLog.Err())
		_ = drain.stop(srv, c.DrainDelay, c.ShutdownTimeout)
		err = fmt.Errorf("--audit-log %s: %w", c.AuditLog, auditLog.Err())
	}
	adminSrv.stop(c.ShutdownTimeout)
	revSrv.stop(c.ShutdownTimeout)
	stopAlerts()
	stopCRL()
	stopIssuers()
	log.Info("stopping: waiting for running jobs")
	stopWorker()
	auth.Drain()
	if werr := <-workerDone; werr != nil && !errors.Is(werr, context.Canceled) {
		log.Error("job worker", "err", werr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	auditSrv.stopped(context.WithoutCancel(ctx), err)
	log.Info("stopping: closing the store")
	// Closed here, not only by the defer above (a second Close is
	// harmless), so that "stopped" means it is closed.
	if cerr := store.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing the store: %w", cerr)
	}
	log.Info("stopped", "err", err)
	return err
}

func newLogger(level string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// openStore opens the store --store names: a redis URL, or else the
// embedded store's file.
func openStore(ctx context.Context, c config, log *slog.Logger) (storage.Store, error) {
	path := c.Store
	if isRedisURL(path) {
		if _, err := redis.ParseURL(path); err != nil {
			return nil, fmt.Errorf("--store: %w", err)
		}
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, err := redis.Open(ctx, path, redis.Config{Retention: c.Retention, ReclaimAfter: c.ReclaimAfter, MinReplicas: c.MinReplicas.redis()})
		if err != nil {
			return nil, fmt.Errorf("--store %s: %w", redactURL(path), err)
		}
		return s, nil
	}
	// embedded.Open's errors name the file.
	s, err := embedded.Open(embeddedPath(c), embedded.Config{Retention: c.Retention, Logger: log})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// externalURL is --external-url, or https://localhost:PORT (or the listen
// host when it is a specific one) from the address actually bound.
func externalURL(flagValue string, addr net.Addr) (*url.URL, error) {
	if flagValue != "" {
		u, err := url.Parse(flagValue)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("--external-url %q: want https://HOST[:PORT] with no path", flagValue)
		}
		u.Path = ""
		return u, nil
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("listener address %s is not TCP", addr)
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		host = tcp.IP.String()
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(tcp.Port))}, nil
}

// serverHosts are the names acmed's own certificate covers.
func serverHosts(base *url.URL) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h := base.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
		hosts = append(hosts, h)
	}
	return hosts
}

func isRedisURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && strings.HasPrefix(u.Scheme, "redis")
}

// redisLogger adapts go-redis's logger to slog, at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client", "msg", fmt.Sprintf(format, v...))
}

// redactURL hides a password before a URL goes into a message.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// serveDebug serves pprof on its own listener, never on the ACME port.
func serveDebug(addr string, log *slog.Logger) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("serving pprof", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
