package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acmed/acmed/acme/admin"
)

// `acmed admin …` is the admin API's client. Each subcommand is an
// adminCommand; a group of them lives in a file of its own
// (admin_accounts.go), listed once in adminCommands.

// adminCommand is one subcommand, e.g. "accounts show ID".
type adminCommand struct {
	name string   // the words that select it: "accounts show"
	args []string // names of its positional arguments, all required
	// bind adds the command's own flags to fs and returns what runs it.
	bind func(fs *flag.FlagSet) adminRun
	// offline commands work on files only (e.g. verifying an audit log):
	// they get no client, and need no server nor credentials.
	offline bool
}

// adminRun does the work. It returns the value --json prints and, for
// people, a function printing it as a table or key: value lines.
type adminRun func(ctx context.Context, cl *adminClient, args []string) (out any, human func(io.Writer), err error)

// adminCommands lists every subcommand; a new group is one line here.
func adminCommands() []adminCommand {
	var cmds []adminCommand
	for _, group := range [][]adminCommand{accountCommands(), backupCommands(), eabCommands(), certCommands(), auditCommands(), caCommands()} {
		cmds = append(cmds, group...)
	}
	return cmds
}

// adminOptions are the flags every subcommand takes.
type adminOptions struct {
	url, tokenFile, caFile, data string
	clientCert, clientKey        string
	json                         bool
}

func (o *adminOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "admin-url", "", "the admin API's URL, e.g. https://127.0.0.1:14001 (env ACMED_ADMIN_URL)")
	fs.StringVar(&o.tokenFile, "admin-token-file", "", "file holding the bearer token (env ACMED_ADMIN_TOKEN_FILE)")
	fs.StringVar(&o.caFile, "admin-ca", "", "PEM file of the CA that signed the admin API's certificate (default DATA/root.pem)")
	fs.StringVar(&o.data, "data", "acmed-data", "acmed's data directory, whose root.pem the client trusts")
	fs.StringVar(&o.clientCert, "admin-client-cert", "", "PEM client certificate, instead of a token (with --admin-client-key)")
	fs.StringVar(&o.clientKey, "admin-client-key", "", "PEM key of --admin-client-cert")
	fs.BoolVar(&o.json, "json", false, "print JSON (objects with snake_case fields) instead of text")
}

// runAdmin is `acmed admin ARGS`.
func runAdmin(ctx context.Context, args []string, stdout io.Writer, getenv func(string) string) error {
	cmd, rest, err := pickAdminCommand(args)
	if err != nil {
		return err
	}
	var o adminOptions
	fs := flag.NewFlagSet("admin "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs)
	run := cmd.bind(fs)
	positional, err := parseInterleaved(fs, rest, len(cmd.args))
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errUsage{fs}
		}
		return fmt.Errorf("admin %s: %v", cmd.name, err)
	}
	if len(positional) != len(cmd.args) {
		return fmt.Errorf("admin %s: want %d argument(s) (%s), got %d", cmd.name, len(cmd.args), strings.Join(cmd.args, " "), len(positional))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"admin-url", "admin-token-file", "admin-ca", "data", "admin-client-cert", "admin-client-key"} {
		env := "ACMED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v := getenv(env); v != "" && !set[name] {
			_ = fs.Set(name, v) // string flags take anything
		}
	}
	var cl *adminClient
	if !cmd.offline {
		if cl, err = newAdminClient(o); err != nil {
			return err
		}
	}
	out, human, err := run(ctx, cl, positional)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	human(stdout)
	return nil
}

// pickAdminCommand finds the subcommand args start with.
func pickAdminCommand(args []string) (adminCommand, []string, error) {
	var names []string
	for _, c := range adminCommands() {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slicesEqual(args[:len(words)], words) {
			return c, args[len(words):], nil
		}
		names = append(names, strings.TrimSpace(c.name+" "+strings.Join(c.args, " ")))
	}
	var given []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		given = append(given, a)
	}
	return adminCommand{}, nil, fmt.Errorf("admin: unknown command %q (want one of: %s)", strings.Join(given, " "), strings.Join(names, "; "))
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// parseInterleaved parses flags that may come before or after the want
// positional arguments (`accounts show ID --json`), which flag alone does
// not. An argument that starts with '-' but names no flag (and is no
// flag's value) is taken as a positional one while one is still wanted:
// IDs are base64url, and one in 64 starts with '-'.
func parseInterleaved(fs *flag.FlagSet, args []string, want int) ([]string, error) {
	var positional, rest []string
	plain := 0 // positional arguments that do not start with '-'
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if len(positional)+plain < want && isDashedValue(fs, a) {
			positional = append(positional, a)
			continue
		}
		if !strings.HasPrefix(a, "-") {
			plain++
		}
		rest = append(rest, a)
		if takesValue(fs, a) && i+1 < len(args) {
			i++
			rest = append(rest, args[i])
		}
	}
	for {
		if err := fs.Parse(rest); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
}

// takesValue reports whether arg is a flag of fs that takes the next
// argument as its value (not a bool flag, no "=value").
func takesValue(fs *flag.FlagSet, arg string) bool {
	if !strings.HasPrefix(arg, "-") || strings.Contains(arg, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(arg, "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

// isDashedValue reports whether arg starts with '-' yet is not a flag of fs
// (nor -h/-help, which flag answers itself).
func isDashedValue(fs *flag.FlagSet, arg string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	if !strings.HasPrefix(arg, "-") || name == "" || name == "h" || name == "help" {
		return false
	}
	return fs.Lookup(name) == nil
}

// adminClient calls the admin API.
type adminClient struct {
	base  string // https://HOST:PORT/admin/v1
	token string
	http  *http.Client
}

func newAdminClient(o adminOptions) (*adminClient, error) {
	if o.url == "" {
		return nil, errors.New("--admin-url: not set (nor ACMED_ADMIN_URL); it is the address given to acmed serve --admin-listen, e.g. https://127.0.0.1:14001")
	}
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--admin-url %q: want https://HOST:PORT", o.url)
	}
	base := strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), admin.Prefix) + admin.Prefix

	caFile := o.caFile
	if caFile == "" {
		caFile = filepath.Join(o.data, "root.pem")
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--admin-ca: %w (give the CA with --admin-ca, or acmed's --data directory)", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("--admin-ca %s: holds no PEM certificate", caFile)
	}
	tlsConfig := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	if o.clientCert != "" || o.clientKey != "" {
		pair, err := tls.LoadX509KeyPair(o.clientCert, o.clientKey)
		if err != nil {
			return nil, fmt.Errorf("--admin-client-cert/--admin-client-key: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	}
	cl := &adminClient{
		base: base,
		// No overall timeout: a backup streams for as long as it takes.
		// do bounds each API call; the transport bounds connecting and
		// waiting for an answer.
		http: &http.Client{Transport: &http.Transport{
			TLSClientConfig: tlsConfig, TLSHandshakeTimeout: 10 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
		}},
	}
	if o.tokenFile != "" {
		raw, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--admin-token-file: %w", err)
		}
		cl.token = strings.TrimSpace(string(raw))
	}
	if cl.token == "" && len(tlsConfig.Certificates) == 0 {
		return nil, errors.New("--admin-token-file: not set (nor ACMED_ADMIN_TOKEN_FILE), and no --admin-client-cert: the admin API needs one")
	}
	return cl, nil
}

// do sends a request to path (below /admin/v1) and decodes a 200's JSON
// into out. Any other answer is an error of one line: the server's
// {"error": "..."} message, with the method, path and status.
func (c *adminClient) do(ctx context.Context, method, path string, query url.Values, out any) error {
	return c.doBody(ctx, method, path, query, nil, out)
}

// doBody is do with a JSON request body (nil: none).
func (c *adminClient) doBody(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := c.sendBody(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, admin.Prefix+path, err)
	}
	if err := json.Unmarshal(answer, out); err != nil {
		return fmt.Errorf("%s %s: answer is not the JSON expected: %w", method, admin.Prefix+path, err)
	}
	return nil
}

// send sends a request and returns a 200's response, whose body the
// caller closes; any other answer is the one-line error do describes.
func (c *adminClient) send(ctx context.Context, method, path string, query url.Values) (*http.Response, error) {
	return c.sendBody(ctx, method, path, query, nil)
}

func (c *adminClient) sendBody(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	target := c.base + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin API %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(answer))
	if json.Unmarshal(answer, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	return nil, fmt.Errorf("%s %s: %s: %s", method, admin.Prefix+path, resp.Status, oneLine(msg))
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
