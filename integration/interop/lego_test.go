package interop

import (
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// lego drives lego 4.35 (built by tools.sh) against one env, with its
// accounts and certificates under one --path.
type lego struct {
	e       *env
	bin     string
	path    string
	log     string
	environ []string
}

func newLego(t *testing.T, e *env) *lego {
	l := &lego{e: e, bin: needTool(t, "lego", true), path: filepath.Join(t.TempDir(), "lego"), log: e.logFile("lego.log")}
	dir := t.TempDir()
	hookLog := e.logFile("lego-hooks.log")
	// The exec provider calls the script as "present|cleanup <fqdn> <value>".
	hook := writeScript(t, dir, "exec-hook.sh", fmt.Sprintf(`set -eu
echo "$1 $2 $3" >> %[2]q
exec curl -sS -f -X POST -d "{\"fqdn\":\"$2\",\"value\":\"$3\"}" "%[1]s/$1"
`, e.mgmt, hookLog))
	l.environ = []string{
		"LEGO_CA_CERTIFICATES=" + e.acmed.rootFile,
		"HOME=" + dir,
		"HTTPREQ_ENDPOINT=" + e.mgmt,
		"HTTPREQ_POLLING_INTERVAL=1",
		"HTTPREQ_PROPAGATION_TIMEOUT=30",
		"EXEC_PATH=" + hook,
		"EXEC_POLLING_INTERVAL=1",
		"EXEC_PROPAGATION_TIMEOUT=30",
		// exec solves a wildcard and its base name one after the other,
		// waiting this long in between (60s by default).
		"EXEC_SEQUENCE_INTERVAL=1",
	}
	return l
}

// run runs lego with the global flags, then args (challenge flags,
// domains, the command and its flags).
func (l *lego) run(t testing.TB, args ...string) {
	t.Helper()
	l.e.run(t, l.log, l.environ, l.bin, l.args(args)...)
}

// runFails is run for a command acmed must refuse; it returns lego's
// output.
func (l *lego) runFails(t testing.TB, args ...string) string {
	t.Helper()
	return l.e.runFails(t, l.log, l.environ, l.bin, l.args(args)...)
}

func (l *lego) args(args []string) []string {
	return append([]string{
		"--server", l.e.acmed.dirURL, "--accept-tos", "--email", "lego@example.com", "--path", l.path,
	}, args...)
}

func (l *lego) http() []string {
	return []string{"--http", "--http.port", fmt.Sprintf("127.0.0.1:%d", l.e.httpPort)}
}

func (l *lego) tls() []string {
	return []string{"--tls", "--tls.port", fmt.Sprintf("127.0.0.1:%d", l.e.alpnPort)}
}

// dns solves dns-01 through a provider; lego's default propagation check
// asks the zone's authoritative servers on port 53, so it asks the test
// DNS instead.
func (l *lego) dns(provider string) []string {
	return []string{"--dns", provider, "--dns.resolvers", l.e.dns.Addr, "--dns.propagation-disable-ans"}
}

func domains(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, "-d", n)
	}
	return out
}

// certFile is lego's bundle (leaf and issuer) for a certificate whose first
// domain is name.
func (l *lego) certFile(name string) string {
	return filepath.Join(l.path, "certificates", strings.ReplaceAll(name, "*", "_")+".crt")
}

func (l *lego) check(t testing.TB, names ...string) *x509.Certificate {
	t.Helper()
	return l.e.checkCertFile(t, names, l.certFile(names[0]))
}

// TestLego runs lego 4.35.2: http-01 and tls-alpn-01 with its own servers,
// dns-01 through the httpreq and exec providers, a wildcard, renew, and
// revoke (lego's revoke signs with the account key only; reason 2 is
// refused; reason 1 blocks the key, so renew --reuse-key is refused).
func TestLego(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	needTool(t, "curl", false)
	e := newEnv(t)
	l := newLego(t, e)
	l.run(t, "--version")

	const (
		httpName = "http.lego.example"
		tlsName  = "tls.lego.example"
		dnsName  = "dns.lego.example"
		wildName = "*.w.lego.example"
		wildBase = "w.lego.example"
	)
	leaves := map[string]*x509.Certificate{}
	t.Run("http-01", func(t *testing.T) {
		e.dualStack(httpName)
		l.run(t, append(append(l.http(), domains(httpName)...), "run")...)
		leaves[httpName] = l.check(t, httpName)
		e.validated(t, httpName, "http-01")
	})
	t.Run("tls-alpn-01", func(t *testing.T) {
		e.dualStack(tlsName)
		// RSA here (lego defaults to ec256).
		l.run(t, append(append([]string{"--key-type", "rsa2048"}, append(l.tls(), domains(tlsName)...)...), "run")...)
		leaves[tlsName] = l.check(t, tlsName)
		if _, ok := leaves[tlsName].PublicKey.(*rsa.PublicKey); !ok {
			t.Errorf("%s: want an RSA certificate, got %T", tlsName, leaves[tlsName].PublicKey)
		}
		e.validated(t, tlsName, "tls-alpn-01")
	})
	t.Run("dns-01", func(t *testing.T) {
		l.run(t, append(append(l.dns("httpreq"), domains(dnsName)...), "run")...)
		leaves[dnsName] = l.check(t, dnsName)
		e.validated(t, dnsName, "dns-01")
	})
	t.Run("wildcard", func(t *testing.T) {
		l.run(t, append(append(l.dns("exec"), domains(wildName, wildBase)...), "run")...)
		leaves[wildName] = l.check(t, wildName, wildBase)
		e.validated(t, wildBase, "dns-01")
	})
	t.Run("renew", func(t *testing.T) {
		for _, c := range []struct {
			names     []string
			challenge []string
		}{
			{[]string{httpName}, l.http()},
			{[]string{wildName, wildBase}, l.dns("exec")},
		} {
			old := leaves[c.names[0]]
			if old == nil {
				t.Skipf("needs the certificate for %v issued above", c.names)
			}
			// acmed's certificates live a week; --days 999 makes any due.
			l.run(t, append(append(c.challenge, domains(c.names...)...), "renew", "--days", "999", "--no-random-sleep")...)
			leaf := l.check(t, c.names...)
			if leaf.SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Errorf("%v: renew kept certificate %s", c.names, serialHex(leaf))
			}
			leaves[c.names[0]] = leaf
		}
	})
	t.Run("revoke", func(t *testing.T) {
		for _, name := range []string{httpName, tlsName} {
			if leaves[name] == nil {
				t.Skipf("needs the certificate for %s issued above", name)
			}
			leaf := l.check(t, name)
			// cACompromise is the CA's to state, not a subscriber's.
			out := l.runFails(t, append(domains(name), "revoke", "--keep", "--reason", "2")...)
			if !strings.Contains(out, "badRevocationReason") {
				t.Errorf("revoke --reason 2: lego's output lacks badRevocationReason:\n%s", out)
			}
			// --keep: the revoked-key subtest renews with its key.
			l.run(t, append(domains(name), "revoke", "--keep", "--reason", "1")...)
			e.waitRevoked(t, leaf, 1, byAccount)
		}
	})
	t.Run("revoked-key-blocked", func(t *testing.T) {
		if leaves[httpName] == nil {
			t.Skip("needs the certificate revoked above")
		}
		// keyCompromise blocked the key: a renewal reusing it is refused.
		out := l.runFails(t, append(append(l.http(), domains(httpName)...), "renew", "--days", "999", "--reuse-key", "--no-random-sleep")...)
		if !strings.Contains(out, "badPublicKey") || !strings.Contains(out, "key is blocked") {
			t.Errorf("renew --reuse-key of a compromised key: lego's output lacks badPublicKey / key is blocked:\n%s", out)
		}
	})
	t.Run("revoke-by-certificate-key", func(t *testing.T) {
		t.Skip("not supported by client: lego's revoke command signs with the account key only")
	})
}
