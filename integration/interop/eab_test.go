package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// eabKey is what `acmed admin eab create --json` prints.
type eabKey struct {
	KID  string `json:"kid"`
	HMAC string `json:"hmac"`
}

// newEABEnv is newEnv with --eab required and an admin API, and a key made
// through `acmed admin eab create` with args.
func newEABEnv(t *testing.T, args ...string) (*env, eabKey) {
	t.Helper()
	e, adm := newAdminEnv(t, "--eab", "required")
	var k eabKey
	adm.run(t, &k, append([]string{"eab", "create"}, args...)...)
	if k.KID == "" || k.HMAC == "" {
		t.Fatalf("acmed admin eab create printed %+v: want a kid and an hmac", k)
	}
	return e, k
}

// TestLegoEAB: lego --eab --kid --hmac against acmed --eab required, with
// a key allowing *.eab.lego.example and vouching for pre.eab.lego.example:
// lego without a binding is refused; with it, a name the key allows is
// issued through http-01, a prevalidated one with no validation at all,
// and a name outside the key's policy is refused.
func TestLegoEAB(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	e, k := newEABEnv(t, "--name", "lego", "--allow", "*.eab.lego.example", "--prevalidated", "pre.eab.lego.example")
	l := newLego(t, e)
	eab := []string{"--eab", "--kid", k.KID, "--hmac", k.HMAC}

	t.Run("no binding", func(t *testing.T) {
		other := *l
		other.path = filepath.Join(t.TempDir(), "lego")
		args := append([]string{"--server", e.acmed.dirURL, "--accept-tos", "--email", "lego@example.com", "--path", other.path},
			append(l.http(), append(domains("web.eab.lego.example"), "run")...)...)
		if err := e.runErr(t, l.log, l.environ, l.bin, args...); err == nil {
			t.Fatal("lego registered without a binding under --eab required")
		}
		// lego reads the directory's meta.externalAccountRequired and
		// stops before it asks: no account may exist.
		if b, _ := os.ReadFile(l.log); !strings.Contains(string(b), "External Account Binding") {
			t.Errorf("lego did not say the server requires External Account Binding; see %s", l.log)
		}
		if lines := e.logLines("event=account.create"); len(lines) != 0 {
			t.Errorf("an account was created without a binding: %v", lines)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		const name = "web.eab.lego.example"
		e.dualStack(name)
		l.run(t, append(append(eab, append(l.http(), domains(name)...)...), "run")...)
		l.check(t, name)
		e.validated(t, name, "http-01")
		e.waitLog(t, "event=account.create", "eab_kid="+k.KID)
	})
	t.Run("prevalidated", func(t *testing.T) {
		const name = "pre.eab.lego.example"
		start := time.Now()
		l.run(t, append(append(eab, append(l.http(), domains(name)...)...), "run")...)
		l.check(t, name)
		e.waitLog(t, "event=authorization.prevalidate", "identifier="+name, "eab_kid="+k.KID)
		t.Logf("prevalidated issuance took %v", time.Since(start).Round(time.Millisecond))
	})
	t.Run("refused by policy", func(t *testing.T) {
		const name = "web.elsewhere.example"
		args := append([]string{"--server", e.acmed.dirURL, "--accept-tos", "--email", "lego@example.com", "--path", l.path},
			append(eab, append(l.http(), append(domains(name), "run")...)...)...)
		if err := e.runErr(t, l.log, l.environ, l.bin, args...); err == nil {
			t.Fatalf("lego got a certificate for %s, outside the key's policy", name)
		}
		e.waitLog(t, "event=order.refuse", name)
	})
}

// TestCertbotEAB: certbot register --eab-kid --eab-hmac-key against acmed
// --eab required, then a name the key allows (http-01), a prevalidated
// one, and one outside the key's policy, refused.
func TestCertbotEAB(t *testing.T) {
	t.Parallel()
	needTool(t, "certbot", false)
	e, k := newEABEnv(t, "--name", "certbot", "--allow", "*.eab.certbot.example", "--prevalidated", "pre.eab.certbot.example")
	c := newCertbot(t, e)
	env := []string{"REQUESTS_CA_BUNDLE=" + e.acmed.rootFile, "HOME=" + c.dir}
	common := []string{"-n", "--server", e.acmed.dirURL, "--config-dir", filepath.Join(c.dir, "config"),
		"--work-dir", filepath.Join(c.dir, "work"), "--logs-dir", filepath.Join(e.logs, "certbot-debug")}
	if err := e.runErr(t, c.log, env, c.bin, append([]string{"register", "--agree-tos", "--register-unsafely-without-email"}, common...)...); err == nil {
		t.Fatal("certbot registered without a binding under --eab required")
	}
	c.run(t, "register", "--agree-tos", "--register-unsafely-without-email", "--eab-kid", k.KID, "--eab-hmac-key", k.HMAC)
	e.waitLog(t, "event=account.create", "eab_kid="+k.KID)

	t.Run("allowed", func(t *testing.T) {
		const name = "web.eab.certbot.example"
		e.dualStack(name)
		c.certonly(t, "web", append(c.standalone(), "-d", name)...)
		c.check(t, "web", name)
	})
	t.Run("prevalidated", func(t *testing.T) {
		const name = "pre.eab.certbot.example"
		c.certonly(t, "pre", append(c.standalone(), "-d", name)...)
		c.check(t, "pre", name)
		e.waitLog(t, "event=authorization.prevalidate", "identifier="+name)
	})
	t.Run("refused by policy", func(t *testing.T) {
		const name = "web.elsewhere.example"
		args := append([]string{"certonly", "--agree-tos", "--register-unsafely-without-email", "--cert-name", "out"},
			append(c.standalone(), append([]string{"-d", name}, common...)...)...)
		if err := e.runErr(t, c.log, env, c.bin, args...); err == nil {
			t.Fatalf("certbot got a certificate for %s, outside the key's policy", name)
		}
		e.waitLog(t, "event=order.refuse", name)
	})
}

// TestCaddyEAB: Caddy 2.11 (built by tools.sh) with a global acme_eab
// against acmed --eab required: a site the key allows is obtained through
// a challenge, a prevalidated one without, and a site outside the key's
// policy is refused at new-order.
func TestCaddyEAB(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "caddy-2.11", true)
	e, k := newEABEnv(t, "--name", "caddy", "--allow", "*.eab.caddy.example", "--prevalidated", "pre.eab.caddy.example")
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	const allowed, prevalidated, refused = "web.eab.caddy.example", "pre.eab.caddy.example", "web.elsewhere.example"
	config := caddyConfig(e, storage, []caddySite{{allowed, ""}, {prevalidated, ""}, {refused, ""}})
	eabBlock := fmt.Sprintf("\tacme_eab {\n\t\tkey_id %s\n\t\tmac_key %s\n\t}\n", k.KID, k.HMAC)
	config = strings.Replace(config, "\temail caddy@example.com\n", "\temail caddy@example.com\n"+eabBlock, 1)
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
	e.run(t, log, environ, bin, "validate", "--config", caddyfile, "--adapter", "caddyfile")
	caddy := e.start("caddy", log, environ, bin, "run", "--config", caddyfile, "--adapter", "caddyfile")

	t.Run("allowed", func(t *testing.T) {
		waitServed(t, e, caddy, allowed, nil, caddyObtainWait)
		e.waitLog(t, validatedEvent, "identifier="+allowed+" ", "outcome=valid")
	})
	t.Run("prevalidated", func(t *testing.T) {
		waitServed(t, e, caddy, prevalidated, nil, caddyObtainWait)
		e.waitLog(t, "event=authorization.prevalidate", "identifier="+prevalidated)
	})
	t.Run("refused by policy", func(t *testing.T) {
		e.waitLog(t, "event=order.refuse", refused)
	})
	e.waitLog(t, "event=account.create", "eab_kid="+k.KID)
}
