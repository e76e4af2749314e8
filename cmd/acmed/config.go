package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
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
	Resolver       string
	CertValidity   time.Duration
	Website        string
	TermsOfService string
	CAAIdentities  string
	LogLevel       string
	Retention      time.Duration
	ReclaimAfter   time.Duration
	ExistOK        bool // init only
}

func newFlagSet(name string, c *config) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("config", "", "YAML config file; keys are the flag names")
	fs.StringVar(&c.Data, "data", "acmed-data", "directory for the CA and the embedded store")
	fs.BoolVar(&c.ExistOK, "exist-ok", false, "init: succeed without change when the CA already exists")
	fs.StringVar(&c.Listen, "listen", ":14000", "address to serve HTTPS on")
	fs.StringVar(&c.ExternalURL, "external-url", "", "base URL clients use (default derived from --listen)")
	fs.StringVar(&c.Store, "store", "", "store: a file path for the embedded store (default DATA/acmed.db)")
	fs.IntVar(&c.HTTP01Port, "http01-port", 80, "port http-01 validation connects to")
	fs.IntVar(&c.TLSALPN01Port, "tlsalpn01-port", 443, "port tls-alpn-01 validation connects to")
	fs.StringVar(&c.Resolver, "resolver", "", "DNS server HOST:PORT for validation (default the system resolver)")
	fs.DurationVar(&c.CertValidity, "cert-validity", 168*time.Hour, "lifetime of issued certificates")
	fs.StringVar(&c.Website, "website", "", "URL shown as meta.website in the directory")
	fs.StringVar(&c.TermsOfService, "terms-of-service", "", "URL of terms new accounts must agree to")
	fs.StringVar(&c.CAAIdentities, "caa-identities", "", "comma-separated CAA issuer domains shown as meta.caaIdentities")
	fs.DurationVar(&c.Retention, "retention", 720*time.Hour, "Redis: keep finished orders and certificates this long after the certificate expires")
	fs.DurationVar(&c.ReclaimAfter, "reclaim-after", 30*time.Second, "Redis: a job a replica took but did not finish is given to another after this long")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
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
		if err := applyFile(fs, path, set); err != nil {
			return c, err
		}
	}
	return c, c.check()
}

func flagNames(fs *flag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

func applyFile(fs *flag.FlagSet, path string, set map[string]bool) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "config" || fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: unknown key %q", path, k)
		}
		if set[k] {
			continue
		}
		if err := fs.Set(k, fmt.Sprint(values[k])); err != nil {
			return fmt.Errorf("config file %s: key %q: %v", path, k, err)
		}
	}
	return nil
}

func (c config) check() error {
	for name, port := range map[string]int{"--http01-port": c.HTTP01Port, "--tlsalpn01-port": c.TLSALPN01Port} {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%s %d: not a port number (1-65535)", name, port)
		}
	}
	if c.CertValidity != 0 && c.CertValidity < time.Minute {
		return fmt.Errorf("--cert-validity %s: must be at least 1m", c.CertValidity)
	}
	if c.ReclaimAfter < 100*time.Millisecond {
		return fmt.Errorf("--reclaim-after %s: must be at least 100ms", c.ReclaimAfter)
	}
	if c.Data == "" {
		return errors.New("--data: must not be empty")
	}
	return nil
}

// errUsage asks for the flag list to be printed.
type errUsage struct{ fs *flag.FlagSet }

func (e errUsage) Error() string { return "usage requested" }

func (e errUsage) print(w io.Writer) {
	fmt.Fprintf(w, "usage: acmed %s [flags]\n", e.fs.Name())
	e.fs.SetOutput(w)
	e.fs.PrintDefaults()
}
