package redis

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Timeouts a URL may override. They are short because a request waits on
// them: a Redis that is down must turn into a 503 within seconds, not
// after the client's own timeout.
const (
	defaultDialTimeout = 2 * time.Second
	defaultIOTimeout   = 2 * time.Second
)

// Ports assumed when an address has none.
const (
	defaultPort         = "6379"
	defaultSentinelPort = "26379"
)

// mode is the deployment a URL names.
type mode int

const (
	standalone mode = iota
	sentinel
	cluster
)

// parseScheme tells the deployment a scheme names and whether it is TLS.
func parseScheme(scheme string) (m mode, useTLS, ok bool) {
	switch strings.ToLower(scheme) {
	case "redis":
		return standalone, false, true
	case "rediss":
		return standalone, true, true
	case "redis+sentinel":
		return sentinel, false, true
	case "rediss+sentinel":
		return sentinel, true, true
	case "redis+cluster":
		return cluster, false, true
	case "rediss+cluster":
		return cluster, true, true
	}
	return 0, false, false
}

// ParseURL turns an acmed store URL (see the package documentation) into
// go-redis options. Its errors are one line that names the URL, with any
// password replaced by "xxxxx", and what is wrong with it, so cmd can
// reject a bad flag before anything starts.
func ParseURL(rawURL string) (*goredis.UniversalOptions, error) {
	opts, err := parseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis store URL %q: %w", redact(rawURL), err)
	}
	return opts, nil
}

func parseURL(rawURL string) (*goredis.UniversalOptions, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New(`want a URL such as redis://host:6379/0`)
	}
	m, useTLS, ok := parseScheme(scheme)
	if !ok {
		return nil, fmt.Errorf("unknown scheme %q; want redis, rediss, redis+sentinel, rediss+sentinel, redis+cluster or rediss+cluster", scheme)
	}
	rest, rawQuery, _ := strings.Cut(rest, "?")
	authority, path, _ := strings.Cut(rest, "/")
	userinfo, hosts := "", authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		userinfo, hosts = authority[:i], authority[i+1:]
	}

	opts := &goredis.UniversalOptions{
		DialTimeout:  defaultDialTimeout,
		ReadTimeout:  defaultIOTimeout,
		WriteTimeout: defaultIOTimeout,
		// go-redis would resend a command whose reply timed out or whose
		// connection broke, though Redis may have run it. A resent
		// compare-and-set then reports a lost race for a write that won,
		// and a resent SET NX a conflict with itself; so nothing is resent,
		// and the caller sees ErrUnavailable instead.
		MaxRetries: -1,
		// A request's deadline, when shorter, bounds its commands too.
		ContextTimeoutEnabled: true,
		// One dial per attempt: five (the default) against a host that
		// drops packets would hold a request for five dial timeouts.
		DialerRetries: 1,
		// Maintenance notifications are a Redis Enterprise feature; probing
		// for them sends CLIENT MAINT_NOTIFICATIONS on each new connection.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if useTLS {
		// ServerName stays empty: tls.DialWithDialer takes it from each
		// address, which matters when cluster or sentinel hand out others.
		opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if userinfo != "" {
		user, pass, _ := strings.Cut(userinfo, ":")
		var err error
		if opts.Username, err = url.PathUnescape(user); err != nil {
			return nil, fmt.Errorf("user name: %w", err)
		}
		if opts.Password, err = url.PathUnescape(pass); err != nil {
			return nil, errors.New("password: bad percent-encoding")
		}
	}

	port := defaultPort
	if m == sentinel {
		port = defaultSentinelPort
	}
	var err error
	if opts.Addrs, err = parseAddrs(hosts, port); err != nil {
		return nil, err
	}
	if err := parsePath(opts, m, path); err != nil {
		return nil, err
	}
	if err := parseQuery(opts, m, rawQuery); err != nil {
		return nil, err
	}
	return opts, nil
}

func parseAddrs(hosts, port string) ([]string, error) {
	if hosts == "" {
		return nil, errors.New("no host")
	}
	var addrs []string
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			return nil, fmt.Errorf("empty host in %q", hosts)
		}
		host, p, err := net.SplitHostPort(h)
		if err != nil {
			// No port: take the default, unless this is not a host at all.
			host, p = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"), port
			if strings.ContainsAny(host, "[]") || (strings.Contains(host, ":") && !strings.HasPrefix(h, "[")) {
				return nil, fmt.Errorf("host %q: want host:port, with an IPv6 address in brackets", h)
			}
		}
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("host %q: port %q is not a number from 1 to 65535", h, p)
		}
		if host == "" {
			return nil, fmt.Errorf("host %q: no host name", h)
		}
		addrs = append(addrs, net.JoinHostPort(host, p))
	}
	return addrs, nil
}

// parsePath reads /db (standalone), /MASTERNAME[/db] (sentinel) or nothing
// (cluster).
func parsePath(opts *goredis.UniversalOptions, m mode, path string) error {
	parts := strings.Split(path, "/")
	if path == "" {
		parts = nil
	}
	switch m {
	case standalone:
		if len(opts.Addrs) != 1 {
			return fmt.Errorf("%d hosts; redis:// takes one (use redis+cluster:// or redis+sentinel:// for several)", len(opts.Addrs))
		}
		if len(parts) > 1 {
			return fmt.Errorf("path %q: want /db", "/"+path)
		}
	case sentinel:
		if len(parts) == 0 || parts[0] == "" {
			return errors.New("no master name; want redis+sentinel://host:port,.../MASTERNAME[/db]")
		}
		if len(parts) > 2 {
			return fmt.Errorf("path %q: want /MASTERNAME[/db]", "/"+path)
		}
		opts.MasterName, parts = parts[0], parts[1:]
	case cluster:
		if len(parts) > 0 && parts[0] != "" {
			return fmt.Errorf("path %q: a cluster has no databases to choose", "/"+path)
		}
		opts.IsClusterMode = true
		return nil
	}
	if len(parts) == 1 && parts[0] != "" {
		db, err := strconv.Atoi(parts[0])
		if err != nil || db < 0 {
			return fmt.Errorf("database %q is not a number from 0 up", parts[0])
		}
		opts.DB = db
	}
	return nil
}

func parseQuery(opts *goredis.UniversalOptions, m mode, rawQuery string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	durations := map[string]*time.Duration{
		"dial_timeout":  &opts.DialTimeout,
		"read_timeout":  &opts.ReadTimeout,
		"write_timeout": &opts.WriteTimeout,
	}
	for name, values := range q {
		if len(values) != 1 {
			return fmt.Errorf("parameter %s given %d times", name, len(values))
		}
		v := values[0]
		if d, ok := durations[name]; ok {
			if *d, err = time.ParseDuration(v); err != nil || *d <= 0 {
				return fmt.Errorf("%s=%q: want a positive duration such as 2s or 500ms", name, v)
			}
			continue
		}
		switch name {
		case "pool_size":
			if opts.PoolSize, err = strconv.Atoi(v); err != nil || opts.PoolSize < 1 {
				return fmt.Errorf("pool_size=%q: want a positive number", v)
			}
		case "sentinel_username", "sentinel_password":
			if m != sentinel {
				return fmt.Errorf("%s is only for redis+sentinel:// URLs", name)
			}
			if name == "sentinel_username" {
				opts.SentinelUsername = v
			} else {
				opts.SentinelPassword = v
			}
		default:
			return fmt.Errorf("unknown parameter %q; known: dial_timeout, read_timeout, write_timeout, pool_size, sentinel_username, sentinel_password", name)
		}
	}
	return nil
}

// redact hides the password in userinfo and the sentinel_password
// parameter, without needing the URL to parse.
func redact(rawURL string) string {
	out := redactUserinfo(rawURL)
	base, query, ok := strings.Cut(out, "?")
	if !ok {
		return out
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if name, _, ok := strings.Cut(p, "="); ok && name == "sentinel_password" {
			params[i] = name + "=" + hidden
		}
	}
	return base + "?" + strings.Join(params, "&")
}

const hidden = "xxxxx"

func redactUserinfo(rawURL string) string {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		// Too mangled to tell userinfo apart: hide all before the last @.
		if at := strings.LastIndex(rawURL, "@"); at >= 0 {
			return hidden + rawURL[at:]
		}
		return rawURL
	}
	end := strings.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		if user, _, hasPass := strings.Cut(rest[:at], ":"); hasPass {
			rest = user + ":" + hidden + rest[at:]
		}
	}
	return scheme + "://" + rest
}
