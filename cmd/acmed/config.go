package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/acmed/acmed/acme/alerts"
	"github.com/acmed/acmed/acme/audit"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/storage/redis"
)

// config is acmed's settings. Each comes from, in falling precedence, a
// flag, an ACMED_ environment variable, the --config YAML file (keys are the
// flag names), or its default.
type config struct {
	Listen         string
	ExternalURL    string
	Data           string
	Store          string
	HTTP01Port     int
	TLSALPN01Port  int
	Resolvers      stringList
	CertValidity   time.Duration
	Website        string
	TermsOfService string
	CAAIdentities  string
	EAB            string
	LogLevel       string
	Retention      time.Duration
	ReclaimAfter   time.Duration
	MinReplicas    minReplicas
	AuthzReuse     bool
	DebugListen    string
	ExistOK        bool // init only

	// Import names an existing CA's PEM files for init to install
	// (import.go); the three go together.
	ImportRoot, ImportIntermediate, ImportKey string
	// IntermediateCSR and IntermediateCert are the offline-root flow
	// (import.go): init writes a CSR, then installs what the root signed.
	IntermediateCSR, IntermediateCert string
	// backendFlags choose where the intermediate's key is (backend.go).
	backendFlags
	// alternateFlags name cross-signed chains to serve (alternates.go).
	alternateFlags

	// MetricsListen serves Prometheus metrics (metrics.go); AlertWebhooks
	// receive expiry alerts, scanned for every AlertInterval (alerts.go).
	MetricsListen string
	AlertWebhooks stringList
	AlertInterval time.Duration
	// AlertCampaignGrace is how long after a campaign's window closes its
	// certificates not yet replaced are alerted about.
	AlertCampaignGrace time.Duration

	// The admin API (admin_serve.go): off unless AdminListen is set.
	AdminListen    string
	AdminTokenFile string
	AdminClientCA  string

	// DrainDelay and ShutdownTimeout shape a clean stop (shutdown.go).
	DrainDelay      time.Duration
	ShutdownTimeout time.Duration

	ValidationTimeout       time.Duration
	ValidationMaxRedirects  int
	ValidationMaxBody       int64
	ValidationMaxConcurrent int
	ValidationMaxPerAccount int // 0: challenges.DefaultMaxPerAccount
	ValidationBlocked       stringList
	ValidationAllowed       stringList
	ValidationHTTPSPort     int

	// AllowIdentifiers and DenyIdentifiers are the global identifier
	// policy (acme/policy patterns).
	AllowIdentifiers stringList
	DenyIdentifiers  stringList

	RateLimits rateLimits // limits.go

	// DefaultProfile is --default-profile; Profiles the config file's
	// profiles: section (profiles.go).
	DefaultProfile string
	Profiles       []namedSpec

	// OCSP serves an OCSP responder and puts its URL in certificates
	// (ocsp.go).
	OCSP          bool
	OCSPBaseURL   string
	OCSPValidity  time.Duration
	OCSPDelegated bool
	// AuditLog is the hash-chained audit log (audit.go): a file or "-";
	// ReplicaName names this replica in it.
	AuditLog    string
	ReplicaName string

	// CRLs (crl.go): where certificates say they are, a plain HTTP
	// listener serving them, how soon a revocation is on one, and how
	// long each is valid.
	CRLBaseURL  string
	CRLListen   string
	CRLRefresh  time.Duration
	CRLValidity time.Duration
}

// stringList is a repeatable flag; one value may also list several,
// comma-separated (as an environment variable must).
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			*l = append(*l, f)
		}
	}
	return nil
}

func newFlagSet(name string, c *config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "YAML config file; keys are the flag names")
	fs.StringVar(&c.Data, "data", "acmed-data", "directory for the CA and the embedded store")
	fs.BoolVar(&c.ExistOK, "exist-ok", false, "init: succeed without change when the CA already exists")
	fs.StringVar(&c.ImportRoot, "import-root", "", "init: install this existing root certificate (PEM) instead of creating a CA; with --import-intermediate and --import-key")
	fs.StringVar(&c.ImportIntermediate, "import-intermediate", "", "init: the existing intermediate certificate (PEM), signed by --import-root, that acmed issues from")
	fs.StringVar(&c.IntermediateCSR, "intermediate-csr", "", "init: generate the intermediate's key (in --data, or the token with --ca-backend pkcs11) and write a CSR for it to this file, for an offline root to sign; no root is created")
	fs.StringVar(&c.IntermediateCert, "intermediate-cert", "", "init: install this intermediate certificate (PEM), the root's answer to --intermediate-csr, with --import-root naming that root")
	fs.StringVar(&c.ImportKey, "import-key", "", "init: the --import-intermediate's private key: ECDSA or RSA, PKCS#8, SEC1 or PKCS#1 PEM")
	addBackendFlags(fs, &c.backendFlags)
	addAlternateFlags(fs, &c.alternateFlags)
	fs.StringVar(&c.Listen, "listen", ":14000", "address to serve HTTPS on")
	fs.StringVar(&c.ExternalURL, "external-url", "", "base URL clients use (default derived from --listen)")
	fs.StringVar(&c.Store, "store", "", "store: a file path for the embedded store (default DATA/acmed.db)")
	fs.IntVar(&c.HTTP01Port, "http01-port", 80, "port http-01 validation connects to")
	fs.IntVar(&c.TLSALPN01Port, "tlsalpn01-port", 443, "port tls-alpn-01 validation connects to")
	fs.Var(&c.Resolvers, "resolver", "DNS server HOST:PORT for validation; repeatable (default the system resolver)")
	fs.BoolVar(&c.AuthzReuse, "authz-reuse", true, "reuse an account's valid authorizations in new orders")
	fs.DurationVar(&c.ValidationTimeout, "validation-timeout", 10*time.Second, "time one validation may take in all")
	fs.IntVar(&c.ValidationMaxRedirects, "validation-max-redirects", 10, "redirects http-01 follows")
	fs.Int64Var(&c.ValidationMaxBody, "validation-max-body", 64<<10, "bytes of an http-01 response read at most")
	fs.IntVar(&c.ValidationMaxConcurrent, "validation-max-concurrent", 64, "validations one replica runs at once")
	fs.IntVar(&c.ValidationMaxPerAccount, "validation-max-per-account", 0,
		"validations of one account one replica runs at once; the account's others wait without taking a slot (0: max(1, --validation-max-concurrent/8))")
	fs.Var(&c.ValidationBlocked, "validation-blocked-networks",
		"CIDRs validation never connects to, in addition to the built-in link-local, metadata, unspecified and multicast ranges; repeatable")
	fs.Var(&c.ValidationAllowed, "validation-allowed-networks",
		"CIDRs opened within the blocked ranges (built-in or --validation-blocked-networks); repeatable; the only way to open a built-in range")
	fs.IntVar(&c.ValidationHTTPSPort, "validation-https-port", 443, "the only port an https redirect of http-01 is followed to")
	fs.Var(&c.AllowIdentifiers, "allow-identifier",
		"identifier pattern every order's identifiers must match (name, *.zone, **.zone with wildcards, IP, CIDR); repeatable; none: all not denied")
	fs.Var(&c.DenyIdentifiers, "deny-identifier", "identifier pattern no order may touch, whatever is allowed; repeatable")
	fs.DurationVar(&c.CertValidity, "cert-validity", 168*time.Hour, "lifetime of mtls and server certificates, from issuance (notBefore is a minute earlier)")
	fs.StringVar(&c.DefaultProfile, "default-profile", "mtls", "certificate profile of orders that name none (built in: mtls, server, shortlived; more in the config file's profiles: section)")
	fs.StringVar(&c.Website, "website", "", "URL shown as meta.website in the directory")
	fs.StringVar(&c.TermsOfService, "terms-of-service", "", "URL of terms new accounts must agree to")
	fs.StringVar(&c.EAB, "eab", "optional", "external account binding (RFC 8555 §7.3.4): optional (a binding sent is verified), required (every new account needs one), off (bindings ignored)")
	fs.StringVar(&c.CAAIdentities, "caa-identities", "", "comma-separated CAA issuer domains shown as meta.caaIdentities")
	fs.DurationVar(&c.Retention, "retention", 720*time.Hour, "keep valid orders and certificates this long after they expire, then delete them (other orders and authorizations: 1h)")
	fs.DurationVar(&c.ReclaimAfter, "reclaim-after", 30*time.Second, "Redis: a job a replica took but did not finish is given to another after this long")
	fs.Var(&c.MinReplicas, "store-min-replicas",
		"Redis: replicas that must confirm each acknowledged write (WAIT), or auto: every healthy replica of the master; 0 turns waiting off")
	fs.StringVar(&c.DebugListen, "debug-listen", "", "address for Go's pprof profiles (e.g. 127.0.0.1:6060); off when empty")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "address serving Prometheus metrics at /metrics over plain HTTP (e.g. 127.0.0.1:9464), never the ACME listener; off when empty")
	fs.Var(&c.AlertWebhooks, "alert-webhook",
		"URL receiving expiry alerts (JSON POST, README has the body): certificates past their renewal window and not replaced, campaign certificates not replaced; repeatable")
	fs.DurationVar(&c.AlertInterval, "alert-interval", 5*time.Minute, "how often one replica looks for certificates to alert about")
	fs.DurationVar(&c.AlertCampaignGrace, "alert-campaign-grace", time.Hour,
		"an early-renewal campaign's certificates still not replaced this long after its window closed are alerted about")
	fs.Var(&c.RateLimits, "rate-limit",
		"NAME=COUNT/PERIOD changes one rate limit (NAME=COUNT for pending-authorizations-per-account, a cap), NAME=off turns one off, off turns all off; repeatable; README has the names and defaults")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.AuditLog, "audit-log", "", "append every audit event to this file as a hash-chained JSON line (acmed admin audit verify checks it); - for standard output; off when empty")
	fs.StringVar(&c.ReplicaName, "replica-name", "", "this replica's name in audit records (default: the name the --audit-log file's chain carries, else the host name)")
	fs.StringVar(&c.AdminListen, "admin-listen", "", "address for the admin API (HTTPS, /admin/v1/), never the ACME listener; off when empty")
	fs.StringVar(&c.AdminTokenFile, "admin-token-file", "", "admin API: file holding the bearer token operators send (mode 0600 or stricter)")
	fs.StringVar(&c.AdminClientCA, "admin-client-ca", "", "admin API: PEM file of CAs whose client certificates may act")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 5*time.Second,
		"on SIGTERM/SIGINT, answer /readyz with 503 this long, still serving, before refusing new connections; at least a balancer's check interval × its failure threshold")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second,
		"after the drain delay, how long requests in flight may take to finish before their connections are closed")
	fs.BoolVar(&c.OCSP, "ocsp", false, "serve an OCSP responder (RFC 6960) at /ocsp, GET and POST, and put its URL in every certificate issued")
	fs.StringVar(&c.OCSPBaseURL, "ocsp-base-url", "", "--ocsp: base URL relying parties reach /ocsp at, put in certificates (e.g. http://ocsp.example.com; default --external-url)")
	fs.DurationVar(&c.OCSPValidity, "ocsp-validity", 4*time.Hour, "--ocsp: nextUpdate - thisUpdate of each answer: how long relying parties and HTTP caches may keep it")
	fs.BoolVar(&c.OCSPDelegated, "ocsp-delegated", false, "--ocsp: sign answers with a short-lived responder certificate (id-kp-OCSPSigning) each replica gets from the CA, not with the CA key itself")
	fs.StringVar(&c.CRLBaseURL, "crl-base-url", "",
		"base URL certificates name their CRL under (BASE/crl/ISSUER.crl); default --external-url; e.g. http://HOST:PORT of --crl-listen")
	fs.StringVar(&c.CRLListen, "crl-listen", "", "address serving CRLs (and OCSP) over plain HTTP, as relying parties fetch them (e.g. :8080); off when empty")
	fs.DurationVar(&c.CRLRefresh, "crl-refresh", time.Minute, "a revocation on any replica is on the CRL every replica serves within this long")
	fs.DurationVar(&c.CRLValidity, "crl-validity", 24*time.Hour, "nextUpdate - thisUpdate of each CRL; one is rebuilt at half of it")
	return fs
}

// loadConfig parses args for the named subcommand. Errors are one line
// naming the flag, variable or file at fault.
func loadConfig(name string, args []string, getenv func(string) string) (config, error) {
	var c config
	fs := newFlagSet(name, &c)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, errUsage{fs}
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	for _, name := range flagNames(fs) {
		env := "ACMED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := getenv(env); v != "" && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return c, fmt.Errorf("environment variable %s=%q: %v", env, v, err)
			}
			set[name] = true
		}
	}
	if path := fs.Lookup("config").Value.String(); path != "" {
		profiles, err := applyFile(fs, path, set)
		if err != nil {
			return c, err
		}
		c.Profiles = profiles
	}
	return c, c.check()
}

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

// applyFile sets the flags the file names and the command line and
// environment did not, and returns its profiles: section.
func applyFile(fs *flag.FlagSet, path string, set map[string]bool) ([]namedSpec, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	var profiles []namedSpec
	if len(doc.Content) == 1 && doc.Content[0].Kind == yaml.MappingNode {
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value != "profiles" {
				continue
			}
			if profiles, err = decodeProfiles(path, top.Content[i+1]); err != nil {
				return nil, err
			}
			top.Content = slices.Delete(top.Content, i, i+2)
			break
		}
	}
	var values map[string]any
	if err := doc.Decode(&values); err != nil {
		return nil, fmt.Errorf("config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return nil, fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		if set[k] {
			continue
		}
		items, isList := values[k].([]any)
		if !isList {
			items = []any{values[k]}
		}
		for _, item := range items {
			if err := fs.Set(k, fmt.Sprint(item)); err != nil {
				return nil, fmt.Errorf("config file %s: key %q: %v", path, k, err)
			}
		}
	}
	return profiles, nil
}

func (c config) check() error {
	for name, port := range map[string]int{"--http01-port": c.HTTP01Port, "--tlsalpn01-port": c.TLSALPN01Port, "--validation-https-port": c.ValidationHTTPSPort} {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%s %d: not a port number (1-65535)", name, port)
		}
	}
	if c.CertValidity != 0 && c.CertValidity < time.Minute {
		return fmt.Errorf("--cert-validity %s: must be at least 1m", c.CertValidity)
	}
	if c.DrainDelay < 0 {
		return fmt.Errorf("--drain-delay %s: must not be negative", c.DrainDelay)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("--shutdown-timeout %s: must not be negative", c.ShutdownTimeout)
	}
	if c.AlertInterval < time.Second {
		return fmt.Errorf("--alert-interval %s: must be at least 1s", c.AlertInterval)
	}
	if c.AlertCampaignGrace < 0 {
		return fmt.Errorf("--alert-campaign-grace %s: must not be negative", c.AlertCampaignGrace)
	}
	for _, u := range c.AlertWebhooks {
		if err := alerts.CheckURL(u); err != nil {
			return err
		}
	}
	if c.ReclaimAfter < 100*time.Millisecond {
		return fmt.Errorf("--reclaim-after %s: must be at least 100ms", c.ReclaimAfter)
	}
	if c.ValidationTimeout <= 0 || c.ValidationMaxConcurrent <= 0 || c.ValidationMaxBody <= 0 || c.ValidationMaxRedirects < 0 {
		return errors.New("--validation-timeout, --validation-max-concurrent and --validation-max-body must be positive, --validation-max-redirects not negative")
	}
	if c.ValidationMaxPerAccount < 0 {
		return fmt.Errorf("--validation-max-per-account %d: must not be negative (0: an eighth of --validation-max-concurrent)", c.ValidationMaxPerAccount)
	}
	if _, err := c.blockedNetworks(); err != nil {
		return err
	}
	if _, err := c.allowedNetworks(); err != nil {
		return err
	}
	if _, err := authority.ParseEABMode(c.EAB); err != nil {
		return err
	}
	if _, err := c.identifierPolicy(); err != nil {
		return err
	}
	if _, err := c.profileSet(); err != nil {
		return err
	}
	for _, r := range c.Resolvers {
		if _, port, err := net.SplitHostPort(r); err != nil || port == "" {
			return fmt.Errorf("--resolver %q: want HOST:PORT, e.g. 10.0.0.53:53", r)
		}
	}
	if c.Data == "" {
		return errors.New("--data: must not be empty")
	}
	if err := c.checkImport(); err != nil {
		return err
	}
	if err := c.checkBackend(); err != nil {
		return err
	}
	if err := c.checkOCSP(); err != nil {
		return err
	}
	if c.ReplicaName != "" {
		if err := audit.CheckReplica(c.ReplicaName); err != nil {
			return fmt.Errorf("--replica-name: %w", err)
		}
	}
	if err := c.checkCRLFlags(); err != nil {
		return err
	}
	if c.AdminListen != "" && c.AdminTokenFile == "" && c.AdminClientCA == "" {
		return errors.New("--admin-listen: needs --admin-token-file or --admin-client-ca, or anyone who reaches it could act as an operator")
	}
	return nil
}

// minReplicas is --store-min-replicas: auto (the zero value) or a count.
type minReplicas struct {
	n     int
	fixed bool // n was given; else auto
}

func (m *minReplicas) String() string {
	if m == nil || !m.fixed {
		return "auto"
	}
	return strconv.Itoa(m.n)
}

func (m *minReplicas) Set(v string) error {
	if v == "auto" {
		*m = minReplicas{}
		return nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return errors.New("want auto or a number of replicas from 0 up")
	}
	*m = minReplicas{n: n, fixed: true}
	return nil
}

// redis is the value for redis.Config.MinReplicas.
func (m minReplicas) redis() int {
	switch {
	case !m.fixed:
		return redis.AutoReplicas
	case m.n == 0:
		return redis.NoReplicas
	}
	return m.n
}

// errUsage asks for the flag list to be printed.
type errUsage struct{ fs *flag.FlagSet }

func (e errUsage) Error() string { return "usage requested" }

func (e errUsage) print(w io.Writer) {
	fmt.Fprintf(w, "usage: acmed %s [flags]\n", e.fs.Name())
	e.fs.SetOutput(w)
	e.fs.PrintDefaults()
}

// blockedNetworks parses --validation-blocked-networks: the ranges blocked
// in addition to the built-in ones. "none" used to turn the built-in ranges
// off; it is refused rather than silently ignored, since an operator who
// wrote it expects those ranges to be open.
func (c config) blockedNetworks() ([]netip.Prefix, error) {
	for _, v := range c.ValidationBlocked {
		if v == "none" {
			return nil, errors.New(`--validation-blocked-networks "none": the built-in ranges are always blocked; open part of them with --validation-allowed-networks`)
		}
	}
	return parseNetworks("--validation-blocked-networks", c.ValidationBlocked)
}

// allowedNetworks parses --validation-allowed-networks.
func (c config) allowedNetworks() ([]netip.Prefix, error) {
	return parseNetworks("--validation-allowed-networks", c.ValidationAllowed)
}

func parseNetworks(flag string, values []string) ([]netip.Prefix, error) {
	var nets []netip.Prefix
	for _, v := range values {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want a CIDR such as 169.254.0.0/16", flag, v)
		}
		nets = append(nets, p.Masked())
	}
	return nets, nil
}
