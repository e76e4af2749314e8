package interop

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Certificate profiles (draft-ietf-acme-profiles) as real clients use
// them: lego --profile, Caddy 2.11's issuer `profile`, and certbot 2.1,
// which knows no profiles and gets acmed's default. The certificates are
// checked by parsing them, against the built-in profiles' shapes.

const (
	// profileValidity is acmed's --cert-validity in these tests: the
	// lifetime of an mtls (default) certificate, different from the 24h of
	// shortlived so that the two cannot be mistaken for each other.
	profileValidity = 72 * time.Hour
	// builtinBackdate is how far before issuance the built-in profiles put
	// notBefore; mtls and server count --cert-validity from issuance, so
	// their lifetime is the two together (acmed's behaviour before
	// profiles).
	builtinBackdate = time.Minute
	// shortlivedLifetime is notAfter-notBefore of a shortlived certificate,
	// backdating included.
	shortlivedLifetime = 24 * time.Hour
)

var (
	serverOnly      = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	serverAndClient = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
)

// profileShape is what a built-in profile makes of a certificate.
type profileShape struct {
	eku      []x509.ExtKeyUsage
	lifetime time.Duration // notAfter-notBefore
}

// shapes of the built-in profiles under acmed --cert-validity profileValidity.
var shapes = map[string]profileShape{
	"mtls":       {serverAndClient, profileValidity + builtinBackdate},
	"server":     {serverOnly, profileValidity + builtinBackdate},
	"shortlived": {serverAndClient, shortlivedLifetime},
}

// checkShape asserts that leaf has exactly the extended key usages and the
// lifetime of profile.
func checkShape(t testing.TB, leaf *x509.Certificate, profile string) {
	t.Helper()
	want, ok := shapes[profile]
	if !ok {
		t.Fatalf("no shape for profile %q", profile)
	}
	eku := slices.Clone(leaf.ExtKeyUsage)
	slices.Sort(eku)
	if !slices.Equal(eku, want.eku) || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("certificate %s (profile %s): extended key usages %v (unknown %v), want %v",
			serialHex(leaf), profile, ekuNames(leaf.ExtKeyUsage), leaf.UnknownExtKeyUsage, ekuNames(want.eku))
	}
	if got := leaf.NotAfter.Sub(leaf.NotBefore); got != want.lifetime {
		t.Errorf("certificate %s (profile %s): notAfter-notBefore = %v (%s to %s), want exactly %v",
			serialHex(leaf), profile, got, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339), want.lifetime)
	}
	if leaf.IsCA {
		t.Errorf("certificate %s (profile %s) is a CA", serialHex(leaf), profile)
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		t.Errorf("certificate %s (profile %s): key usage %b lacks digitalSignature", serialHex(leaf), profile, leaf.KeyUsage)
	}
}

func ekuNames(ekus []x509.ExtKeyUsage) []string {
	var out []string
	for _, u := range ekus {
		switch u {
		case x509.ExtKeyUsageServerAuth:
			out = append(out, "serverAuth")
		case x509.ExtKeyUsageClientAuth:
			out = append(out, "clientAuth")
		default:
			out = append(out, fmt.Sprintf("eku(%d)", u))
		}
	}
	return out
}

// issuedProfile asserts that acmed's audit record of leaf's issuance names
// profile.
func (e *env) issuedProfile(t testing.TB, leaf *x509.Certificate, profile string) {
	t.Helper()
	line := e.waitLog(t, "msg=audit", "event=certificate.issue", "serial="+serialHex(leaf)+" ")
	if !strings.Contains(line, " profile="+profile+" ") {
		t.Errorf("acmed's issuance record of %s does not name profile %s: %s", serialHex(leaf), profile, line)
	}
}

// TestLegoProfile runs lego 4.35.2's `run --profile`: shortlived gives a
// 24h serverAuth+clientAuth certificate, server a serverAuth-only one, and
// a profile acmed does not offer fails with invalidProfile and writes no
// certificate. (lego sends --profile as given: it does not check it
// against the directory's meta.profiles.)
func TestLegoProfile(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	e := newEnv(t, "--cert-validity", profileValidity.String())
	l := newLego(t, e)

	for _, profile := range []string{"shortlived", "server"} {
		t.Run(profile, func(t *testing.T) {
			name := profile + ".profile.lego.example"
			l.run(t, append(append(l.http(), domains(name)...), "run", "--profile", profile)...)
			leaf := l.check(t, name)
			checkShape(t, leaf, profile)
			e.issuedProfile(t, leaf, profile)
		})
	}
	t.Run("default", func(t *testing.T) {
		const name = "default.profile.lego.example"
		l.run(t, append(append(l.http(), domains(name)...), "run")...)
		leaf := l.check(t, name)
		checkShape(t, leaf, "mtls")
		e.issuedProfile(t, leaf, "mtls")
	})
	t.Run("unknown", func(t *testing.T) {
		const name = "nosuch.profile.lego.example"
		// Its own log, so that what is asserted is this run's output.
		log := e.logFile("lego-nosuch.log")
		args := append([]string{"--server", e.acmed.dirURL, "--accept-tos", "--email", "lego@example.com", "--path", l.path},
			append(l.http(), append(domains(name), "run", "--profile", "nosuch")...)...)
		if err := e.runErr(t, log, l.environ, l.bin, args...); err == nil {
			t.Fatal("lego got a certificate with --profile nosuch")
		}
		out, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), "urn:ietf:params:acme:error:invalidProfile") {
			t.Errorf("lego's output does not carry acmed's invalidProfile problem; see %s", log)
		}
		if _, err := os.Stat(l.certFile(name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lego wrote %s for a refused order (stat: %v)", l.certFile(name), err)
		}
	})
}

// TestCaddyProfile runs Caddy 2.11.9 (built by tools.sh) with `profile
// shortlived` in a site's acme issuer and no profile on another: the first
// is served a 24h serverAuth+clientAuth certificate, the second acmed's
// default (mtls). Caddy renews at a third of the lifetime left, so neither
// is renewed while the test runs.
func TestCaddyProfile(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "caddy-2.11", true)
	e := newEnv(t, "--cert-validity", profileValidity.String())
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	const short, plain = "short.profile.caddy.example", "plain.profile.caddy.example"
	config := caddyConfig(e, storage, []caddySite{{short, "http-01"}, {plain, "http-01"}})
	// The issuer of the first site only (caddyConfig writes the sites in
	// order, each with its own issuer block).
	config = strings.Replace(config, "\t\t\tdisable_tlsalpn_challenge\n", "\t\t\tdisable_tlsalpn_challenge\n\t\t\tprofile shortlived\n", 1)
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	environ := []string{
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"XDG_CONFIG_HOME=" + filepath.Join(home, "config"),
		"XDG_CACHE_HOME=" + filepath.Join(home, "cache"),
	}
	log := e.logFile("caddy.log")
	e.run(t, log, environ, bin, "version")
	// The adapted JSON must carry the profile on that issuer: proof that
	// Caddy took the subdirective, not just that it parsed.
	ctx, cancel := context.WithTimeout(t.Context(), clientTimeout)
	defer cancel()
	adapt := exec.CommandContext(ctx, bin, "adapt", "--config", caddyfile, "--adapter", "caddyfile")
	adapt.Env = append(os.Environ(), environ...)
	adapted, err := adapt.Output()
	if err != nil || strings.Count(string(adapted), `"profile":"shortlived"`) != 1 {
		t.Fatalf("caddy adapt: %v; want one issuer with \"profile\":\"shortlived\" in %s", err, adapted)
	}
	caddy := e.start("caddy", log, environ, bin, "run", "--config", caddyfile, "--adapter", "caddyfile")

	for _, c := range []struct{ name, profile string }{{short, "shortlived"}, {plain, "mtls"}} {
		t.Run(c.profile, func(t *testing.T) {
			leaf := waitServed(t, e, caddy, c.name, nil, caddyObtainWait)
			checkShape(t, leaf, c.profile)
			e.issuedProfile(t, leaf, c.profile)
			stored := readChain(t, caddyCertFile(t, storage, c.name))[0]
			if !stored.Equal(leaf) {
				t.Errorf("%s: Caddy serves %s but stored %s", c.name, serialHex(leaf), serialHex(stored))
			}
		})
	}
}

// TestCertbotDefaultProfile runs Debian's certbot 2.1, which has no
// profile support (no --preferred-profile; its acme library's NewOrder
// carries identifiers only): its certificates get acmed's default profile,
// mtls unless --default-profile names another.
func TestCertbotDefaultProfile(t *testing.T) {
	t.Parallel()
	needTool(t, "certbot", false)
	for _, c := range []struct {
		name    string
		args    []string
		profile string
	}{
		{"mtls", nil, "mtls"},
		{"default-profile-server", []string{"--default-profile", "server"}, "server"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, append([]string{"--cert-validity", profileValidity.String()}, c.args...)...)
			cb := newCertbot(t, e)
			name := c.name + ".profile.certbot.example"
			cb.certonly(t, "web", append(cb.standalone(), "-d", name)...)
			leaf := cb.check(t, "web", name)
			checkShape(t, leaf, c.profile)
			e.issuedProfile(t, leaf, c.profile)
			checkEchoedProfile(t, filepath.Join(e.logs, "certbot-debug", "letsencrypt.log"), c.profile)
		})
	}
}

// checkEchoedProfile asserts that every order object in certbot's debug
// log (which has each answer's body on a line of its own) carries profile,
// though certbot never asked for one.
func checkEchoedProfile(t testing.TB, debugLog, profile string) {
	t.Helper()
	b, err := os.ReadFile(debugLog)
	if err != nil {
		t.Fatal(err)
	}
	orders := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var o struct {
			Finalize string  `json:"finalize"`
			Profile  *string `json:"profile"`
		}
		if json.Unmarshal([]byte(line), &o) != nil || o.Finalize == "" {
			continue // not an order
		}
		orders++
		if o.Profile == nil || *o.Profile != profile {
			t.Errorf("order as certbot received it has profile %v, want %q: %s", o.Profile, profile, line)
		}
	}
	if orders == 0 {
		t.Errorf("no order object in %s", debugLog)
	}
}
