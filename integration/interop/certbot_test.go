package interop

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// certbot drives Debian's certbot against one env, with all its state in
// a temp dir.
type certbot struct {
	e    *env
	bin  string
	dir  string // its config and work dirs, and the hook scripts
	log  string
	hook struct{ auth, cleanup string }
}

func newCertbot(t *testing.T, e *env) *certbot {
	c := &certbot{e: e, bin: needTool(t, "certbot", false), dir: t.TempDir(), log: e.logFile("certbot.log")}
	e.logFile(filepath.Join("certbot-debug", "letsencrypt.log"))
	// The hooks publish and remove the dns-01 TXT record through the test
	// DNS's management API. A wildcard and its base name share one name, so
	// cleanup removes only its own value.
	hookLog := e.logFile("certbot-hooks.log")
	c.hook.auth = writeScript(t, c.dir, "auth-hook.sh", fmt.Sprintf(`set -eu
echo "auth $CERTBOT_DOMAIN $CERTBOT_VALIDATION" >> %[2]q
exec curl -sS -f -X POST -d "{\"host\":\"_acme-challenge.$CERTBOT_DOMAIN.\",\"value\":\"$CERTBOT_VALIDATION\"}" %[1]s/set-txt
`, e.mgmt, hookLog))
	c.hook.cleanup = writeScript(t, c.dir, "cleanup-hook.sh", fmt.Sprintf(`set -eu
echo "cleanup $CERTBOT_DOMAIN $CERTBOT_VALIDATION" >> %[2]q
exec curl -sS -f -X POST -d "{\"fqdn\":\"_acme-challenge.$CERTBOT_DOMAIN.\",\"value\":\"$CERTBOT_VALIDATION\"}" %[1]s/cleanup
`, e.mgmt, hookLog))
	return c
}

// run runs certbot with the flags every command takes.
func (c *certbot) run(t testing.TB, args ...string) {
	t.Helper()
	c.e.run(t, c.log, c.environ(), c.bin, c.args(args)...)
}

// runFails is run for a command acmed must refuse; it returns certbot's
// output and what it wrote to its debug log, where alone it shows
// acmed's problem document.
func (c *certbot) runFails(t testing.TB, args ...string) string {
	t.Helper()
	debug := filepath.Join(c.e.logs, "certbot-debug", "letsencrypt.log")
	from := fileSize(debug)
	out := c.e.runFails(t, c.log, c.environ(), c.bin, c.args(args)...)
	return out + readFrom(t, debug, from)
}

func (c *certbot) environ() []string {
	return []string{"REQUESTS_CA_BUNDLE=" + c.e.acmed.rootFile, "HOME=" + c.dir}
}

func (c *certbot) args(args []string) []string {
	return append(args,
		"-n", "--server", c.e.acmed.dirURL,
		"--config-dir", filepath.Join(c.dir, "config"),
		"--work-dir", filepath.Join(c.dir, "work"),
		// certbot's own debug log (every request and answer) is kept with
		// the test's logs; every run appends to letsencrypt.log.
		"--logs-dir", filepath.Join(c.e.logs, "certbot-debug"),
		"-v",
	)
}

func (c *certbot) certonly(t testing.TB, certName string, args ...string) {
	t.Helper()
	c.run(t, append([]string{"certonly", "--agree-tos", "--register-unsafely-without-email", "--cert-name", certName}, args...)...)
}

func (c *certbot) standalone() []string {
	return []string{"--standalone", "--preferred-challenges", "http-01",
		"--http-01-port", fmt.Sprint(c.e.httpPort), "--http-01-address", "127.0.0.1"}
}

func (c *certbot) manualDNS() []string {
	return []string{"--manual", "--preferred-challenges", "dns-01",
		"--manual-auth-hook", c.hook.auth, "--manual-cleanup-hook", c.hook.cleanup}
}

// live is a file of a lineage: cert.pem, chain.pem, fullchain.pem, privkey.pem.
func (c *certbot) live(certName, file string) string {
	return filepath.Join(c.dir, "config", "live", certName, file)
}

// check asserts the lineage's current certificate and returns its leaf.
func (c *certbot) check(t testing.TB, certName string, names ...string) *x509.Certificate {
	t.Helper()
	// cert.pem is the leaf alone; fullchain.pem must hold the same leaf
	// followed by the intermediate.
	leaf := readChain(t, c.live(certName, "cert.pem"))[0]
	full := readChain(t, c.live(certName, "fullchain.pem"))
	if !leaf.Equal(full[0]) {
		t.Fatalf("%s: cert.pem and fullchain.pem hold different leaves", certName)
	}
	return c.e.checkChain(t, full, names...)
}

// TestCertbot runs Debian's certbot 2.1: register, http-01 through
// --standalone, dns-01 and a wildcard through --manual hooks, renew, and
// revoke by account key, by certificate key (keyCompromise, after which a
// renewal reusing the key is refused) and by another account holding
// authorizations for every name. certbot has no tls-alpn-01.
func TestCertbot(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "certbot", false)
	needTool(t, "curl", false)
	e := newEnv(t)
	c := newCertbot(t, e)
	e.run(t, c.log, nil, bin, "--version")

	c.run(t, "register", "--agree-tos", "--register-unsafely-without-email")
	e.waitLog(t, "msg=audit", "event=account.create")

	const (
		httpName = "http.certbot.example"
		dnsName  = "dns.certbot.example"
		wildBase = "w.certbot.example"
		wildName = "*.w.certbot.example"
	)
	leaves := map[string]*x509.Certificate{}
	t.Run("http-01", func(t *testing.T) {
		e.dualStack(httpName)
		c.certonly(t, "http", append(c.standalone(), "-d", httpName)...)
		leaves["http"] = c.check(t, "http", httpName)
		e.validated(t, httpName, "http-01")
	})
	t.Run("tls-alpn-01", func(t *testing.T) {
		t.Skip("not supported by client: certbot 2.1 has no tls-alpn-01")
	})
	t.Run("dns-01", func(t *testing.T) {
		// RSA here (certbot 2.1 defaults to ECDSA), so that the revocation
		// by certificate key below is signed RS256.
		c.certonly(t, "dns", append(c.manualDNS(), "--key-type", "rsa", "-d", dnsName)...)
		leaves["dns"] = c.check(t, "dns", dnsName)
		if _, ok := leaves["dns"].PublicKey.(*rsa.PublicKey); !ok {
			t.Errorf("dns: want an RSA certificate, got %T", leaves["dns"].PublicKey)
		}
		e.validated(t, dnsName, "dns-01")
	})
	t.Run("wildcard", func(t *testing.T) {
		c.certonly(t, "wild", append(c.manualDNS(), "-d", wildName, "-d", wildBase)...)
		leaves["wild"] = c.check(t, "wild", wildName, wildBase)
		e.validated(t, wildBase, "dns-01")
	})
	t.Run("renew", func(t *testing.T) {
		if len(leaves) != 3 {
			t.Skip("needs the three certificates issued above")
		}
		// Every lineage, each with the authenticator it was issued with.
		c.run(t, "renew", "--force-renewal", "--no-random-sleep-on-renew")
		for name, names := range map[string][]string{
			"http": {httpName}, "dns": {dnsName}, "wild": {wildName, wildBase},
		} {
			leaf := c.check(t, name, names...)
			if leaf.SerialNumber.Cmp(leaves[name].SerialNumber) == 0 {
				t.Errorf("%s: renew kept certificate %s", name, serialHex(leaf))
			}
			leaves[name] = leaf
		}
	})
	t.Run("revoke-by-account-key", func(t *testing.T) {
		if leaves["http"] == nil {
			t.Skip("needs the http-01 certificate")
		}
		leaf := c.check(t, "http", httpName)
		c.run(t, "revoke", "--cert-path", c.live("http", "cert.pem"), "--reason", "superseded", "--no-delete-after-revoke")
		e.waitRevoked(t, leaf, 4, byAccount)
	})
	t.Run("revoke-by-certificate-key", func(t *testing.T) {
		if leaves["dns"] == nil {
			t.Skip("needs the dns-01 certificate")
		}
		leaf := c.check(t, "dns", dnsName)
		c.run(t, "revoke", "--cert-path", c.live("dns", "cert.pem"), "--key-path", c.live("dns", "privkey.pem"),
			"--reason", "keycompromise", "--no-delete-after-revoke")
		e.waitRevoked(t, leaf, 1, byCertKey)
		// keyCompromise blocked the (RSA) key: a renewal reusing it is
		// refused.
		out := c.runFails(t, append([]string{"certonly", "--cert-name", "dns", "--force-renewal", "--reuse-key", "--key-type", "rsa"},
			append(c.manualDNS(), "-d", dnsName)...)...)
		if !strings.Contains(out, "badPublicKey") || !strings.Contains(out, "key is blocked") {
			t.Errorf("renewal reusing a compromised key: certbot's output and debug log lack badPublicKey / key is blocked:\n%s", out)
		}
	})
	t.Run("revoke-by-authorizations", func(t *testing.T) {
		if leaves["wild"] == nil {
			t.Skip("needs the wildcard certificate")
		}
		leaf := c.check(t, "wild", wildName, wildBase)
		// Another certbot, another account: once it holds valid
		// authorizations for both names (the wildcard's by dns-01), it
		// may revoke the first account's certificate.
		other := newCertbot(t, e)
		other.log = e.logFile("certbot-other.log")
		other.run(t, "register", "--agree-tos", "--register-unsafely-without-email")
		out := other.runFails(t, "revoke", "--cert-path", c.live("wild", "cert.pem"), "--no-delete-after-revoke")
		if !strings.Contains(out, "unauthorized") || !strings.Contains(out, "no valid authorization for") {
			t.Errorf("revocation by an account without authorizations: certbot's output and debug log lack unauthorized / what is missing:\n%s", out)
		}
		other.certonly(t, "wild", append(other.manualDNS(), "-d", wildName, "-d", wildBase)...)
		other.run(t, "revoke", "--cert-path", c.live("wild", "cert.pem"), "--reason", "cessationofoperation", "--no-delete-after-revoke")
		e.waitRevoked(t, leaf, 5, byAuthorizations)
	})
	t.Run("account-update-and-deactivate", func(t *testing.T) {
		c.run(t, "update_account", "-m", "certbot@example.com")
		e.waitLog(t, "msg=audit", "event=account.update", "contact=[mailto:certbot@example.com]")
		c.run(t, "unregister")
		e.waitLog(t, "msg=audit", "event=account.deactivate")
	})
}
