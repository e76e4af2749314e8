package interop

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The admin API's JSON, as `acmed admin ... --json` prints it (the fields
// these tests read).
type (
	adminWindow struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	}
	adminCert struct {
		Serial        string      `json:"serial"`
		Status        string      `json:"status"`
		NotBefore     time.Time   `json:"not_before"`
		NotAfter      time.Time   `json:"not_after"`
		ReplacedBy    string      `json:"replaced_by"`
		Replaces      string      `json:"replaces"`
		Campaign      string      `json:"campaign"`
		RenewalWindow adminWindow `json:"renewal_window"`
	}
	renewEarly struct {
		ID      string `json:"id"`
		Matched int    `json:"matched"`
	}
	adminCampaign struct {
		ID             string      `json:"id"`
		Window         adminWindow `json:"window"`
		Matched        int         `json:"matched"`
		Replaced       int         `json:"replaced"`
		Pending        int         `json:"pending"`
		PendingSerials []string    `json:"pending_serials"`
		CreatedAt      time.Time   `json:"created_at"`
	}
)

// admin runs `acmed admin` against one acmed's admin listener, as an
// operator would: the URL and token from the environment, acmed's root
// from --data.
type admin struct {
	environ []string
	data    string
	log     string
}

// newAdminEnv is newEnv with the admin API on, with extra acmed flags.
func newAdminEnv(t *testing.T, acmedArgs ...string) (*env, *admin) {
	t.Helper()
	token := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(token, []byte("interop-admin-token-0123456789abcdef"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	e := newEnv(t, append([]string{"--admin-listen", addr, "--admin-token-file", token}, acmedArgs...)...)
	return e, &admin{
		environ: []string{"ACMED_ADMIN_URL=https://" + addr, "ACMED_ADMIN_TOKEN_FILE=" + token},
		data:    e.acmed.data,
		log:     e.logFile("acmed-admin.log"),
	}
}

// run runs `acmed admin ARGS --json` and decodes what it prints into out.
func (a *admin) run(t testing.TB, out any, args ...string) {
	t.Helper()
	args = append(append([]string{"admin"}, args...), "--json", "--data", a.data)
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, acmedBinary, args...)
	cmd.Env = append(os.Environ(), a.environ...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if f, ferr := os.OpenFile(a.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "==== %s $ acmed %s\n%s%s==== exit: %s\n", time.Now().Format(time.RFC3339), strings.Join(args, " "),
			stdout.String(), stderr.String(), errOrOK(err))
		f.Close()
	}
	if err != nil {
		t.Fatalf("acmed %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	if err := json.Unmarshal(stdout.Bytes(), out); err != nil {
		t.Fatalf("acmed %s printed %q: %v", strings.Join(args, " "), stdout.String(), err)
	}
}

// cert is `acmed admin certs show SERIAL`, the serial written as openssl
// prints it (upper-case hex), which acmed must accept.
func (a *admin) cert(t testing.TB, leaf *x509.Certificate) adminCert {
	t.Helper()
	var c adminCert
	a.run(t, &c, "certs", "show", strings.ToUpper(serialHex(leaf)))
	if !sameSerial(c.Serial, leaf) {
		t.Fatalf("certs show %s answered certificate %q", serialHex(leaf), c.Serial)
	}
	return c
}

func (a *admin) campaign(t testing.TB, id string) adminCampaign {
	t.Helper()
	var c adminCampaign
	a.run(t, &c, "campaigns", "show", id)
	if c.ID != id {
		t.Fatalf("campaigns show %s answered campaign %q", id, c.ID)
	}
	return c
}

// sameSerial reports whether the admin API's serial s (hex) is leaf's.
func sameSerial(s string, leaf *x509.Certificate) bool {
	n, ok := new(big.Int).SetString(s, 16)
	return ok && n.Cmp(leaf.SerialNumber) == 0
}

// checkFlagged asserts what renew-early must have done to cert: its
// window moved into the campaign's, which opens after the certificate's
// notBefore (cert-manager ignores a window starting at or before it),
// closes within a minute of the campaign's start and long before the
// window the certificate had.
func checkFlagged(t testing.TB, c adminCert, camp adminCampaign, before adminWindow) {
	t.Helper()
	w := c.RenewalWindow
	if c.Campaign != camp.ID {
		t.Errorf("certificate %s: campaign %q, want %q", c.Serial, c.Campaign, camp.ID)
	}
	if !w.Start.After(c.NotBefore) || !w.End.After(w.Start) || w.End.After(camp.CreatedAt.Add(time.Minute)) {
		t.Errorf("certificate %s (notBefore %s): flagged window %s to %s; want one opening after notBefore and closing by %s, a minute after the campaign started",
			c.Serial, c.NotBefore, w.Start, w.End, camp.CreatedAt.Add(time.Minute))
	}
	if !w.End.Before(before.Start) {
		t.Errorf("certificate %s: flagged window %s to %s does not end before its normal window (from %s)", c.Serial, w.Start, w.End, before.Start)
	}
}

// checkReplaced asserts that acmed recorded newLeaf as the replacement of
// old (the client sent replaces) and that the campaign has nothing left.
func checkReplaced(t testing.TB, a *admin, old, newLeaf *x509.Certificate, campaignID string) {
	t.Helper()
	nc := a.cert(t, newLeaf)
	if !sameSerial(nc.Replaces, old) {
		t.Errorf("new certificate %s: replaces %q, want %s (the client did not send replaces, or acmed did not record it)",
			nc.Serial, nc.Replaces, serialHex(old))
	}
	oc := a.cert(t, old)
	if !sameSerial(oc.ReplacedBy, newLeaf) {
		t.Errorf("old certificate %s: replaced_by %q, want %s", oc.Serial, oc.ReplacedBy, serialHex(newLeaf))
	}
	camp := a.campaign(t, campaignID)
	if camp.Matched != 1 || camp.Replaced != 1 || camp.Pending != 0 || len(camp.PendingSerials) != 0 {
		t.Errorf("campaign %s: matched %d, replaced %d, pending %d %v; want 1, 1, 0",
			camp.ID, camp.Matched, camp.Replaced, camp.Pending, camp.PendingSerials)
	}
}

// logFrom is what a log file gained after offset; offsetOf is its size.
func logFrom(t testing.TB, path string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[min(offset, int64(len(b))):])
}

func offsetOf(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// legoARIWait is lego renew's --ari-wait-to-renew-duration. lego picks a
// random time in the window (RFC 9773 §4.2) and renews at once only if it
// has passed; otherwise it sleeps until then if that is within this
// duration, else it leaves the certificate for its next run. A campaign's
// window closes a minute after it starts, so a run inside that minute
// renews within a minute, and any run after it renews at once.
const legoARIWait = "90s"

// TestLegoARIRenewEarly: lego 4.35.2 obtains a week-long certificate; a
// `lego renew` with ARI (on by default) leaves it alone, its renewal
// window days away; the operator flags it with `acmed admin certs
// renew-early --serial`; the next `lego renew` renews it at once and sends
// replaces, and the campaign shows it replaced.
func TestLegoARIRenewEarly(t *testing.T) {
	t.Parallel()
	needTool(t, "lego", true)
	e, adm := newAdminEnv(t, "--cert-validity", "168h")
	l := newLego(t, e)
	const name = "ari.lego.example"
	// --dynamic: without ARI's answer lego would renew a week-long
	// certificate after half its lifetime (its default --days 30 would
	// renew it on every run), so a renewal here is ARI's doing.
	renew := append(append(l.http(), domains(name)...), "renew", "--no-random-sleep", "--dynamic", "--ari-wait-to-renew-duration", legoARIWait)

	l.run(t, append(append(l.http(), domains(name)...), "run")...)
	old := l.check(t, name)
	before := adm.cert(t, old)
	if before.Status != "valid" || before.ReplacedBy != "" || before.Campaign != "" {
		t.Fatalf("new certificate %s: status %q, replaced_by %q, campaign %q; want valid, none, none", before.Serial, before.Status, before.ReplacedBy, before.Campaign)
	}

	t.Run("not due", func(t *testing.T) {
		from := offsetOf(l.log)
		l.run(t, renew...)
		if leaf := l.check(t, name); leaf.SerialNumber.Cmp(old.SerialNumber) != 0 {
			t.Fatalf("lego renewed %s (now %s) before its renewal window (%s to %s)",
				serialHex(old), serialHex(leaf), before.RenewalWindow.Start, before.RenewalWindow.End)
		}
		if out := logFrom(t, l.log, from); !strings.Contains(out, "renewalInfo endpoint indicates that renewal is not needed") {
			t.Errorf("lego did not ask acmed's renewalInfo, or misread it; its output:\n%s", out)
		}
	})

	var camp renewEarly
	adm.run(t, &camp, "certs", "renew-early", "--serial", strings.ToUpper(serialHex(old)))
	if camp.ID == "" || camp.Matched != 1 {
		t.Fatalf("renew-early --serial %s: %+v, want an id and matched 1", serialHex(old), camp)
	}
	flagged := adm.campaign(t, camp.ID)
	if flagged.Matched != 1 || flagged.Replaced != 0 || flagged.Pending != 1 || len(flagged.PendingSerials) != 1 || !sameSerial(flagged.PendingSerials[0], old) {
		t.Errorf("campaign %s before lego renews: matched %d, replaced %d, pending %d %v; want 1, 0, 1 [%s]",
			camp.ID, flagged.Matched, flagged.Replaced, flagged.Pending, flagged.PendingSerials, serialHex(old))
	}
	checkFlagged(t, adm.cert(t, old), flagged, before.RenewalWindow)

	t.Run("renew early", func(t *testing.T) {
		from := offsetOf(l.log)
		l.run(t, renew...)
		leaf := l.check(t, name)
		if leaf.SerialNumber.Cmp(old.SerialNumber) == 0 {
			t.Fatalf("lego did not renew flagged certificate %s; its output:\n%s", serialHex(old), logFrom(t, l.log, from))
		}
		if out := logFrom(t, l.log, from); !strings.Contains(out, "renewalInfo endpoint indicates that renewal is needed") {
			t.Errorf("lego renewed, but not on ARI's word; its output:\n%s", out)
		}
		if !leaf.NotBefore.Before(before.RenewalWindow.Start) {
			t.Errorf("renewed at %s, not before the normal window (from %s)", leaf.NotBefore, before.RenewalWindow.Start)
		}
		t.Logf("renewed %s with %s, %v before its normal window", serialHex(old), serialHex(leaf),
			before.RenewalWindow.Start.Sub(leaf.NotBefore).Round(time.Minute))
		checkReplaced(t, adm, old, leaf, camp.ID)
	})
}

// caddyARIValidity is acmed's --cert-validity for Caddy's ARI test. Caddy
// asks for renewal information right after issuance, then again after
// the Retry-After acmed gave (a fiftieth of the lifetime, at least a
// minute); the first answer's must be short enough for a bounded wait,
// and the lifetime long enough (31 minutes with the backdate) that
// Caddy's own schedule, from a third of the lifetime before notAfter,
// stays 20 minutes away.
const caddyARIValidity = "30m"

// caddyARIRenewWait bounds Caddy's early renewal: up to acmed's first
// Retry-After (a minute) before Caddy asks again, up to the campaign's
// window (a minute) for the time it picks in it, then the issuance; its
// maintenance loop runs every 2s (renew_interval).
const caddyARIRenewWait = 4 * time.Minute

// TestCaddyARIRenewEarly: Caddy 2.11.9 obtains a certificate; the
// operator flags every certificate under caddy.example with `acmed admin
// certs renew-early --san-suffix`; Caddy, polling ARI on its own, renews
// it long before its normal time and sends replaces, and the campaign
// shows it replaced.
func TestCaddyARIRenewEarly(t *testing.T) {
	t.Parallel()
	bin := needTool(t, "caddy-2.11", true)
	e, adm := newAdminEnv(t, "--cert-validity", caddyARIValidity)
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	const name = "ari.caddy.example"
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(caddyConfig(e, storage, []caddySite{{name, ""}})), 0o644); err != nil {
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

	old := waitServed(t, e, caddy, name, nil, caddyObtainWait)
	before := adm.cert(t, old)
	// acmez asks for the new certificate's renewal information before
	// Caddy stores it; Caddy logs the answer (window and recheck time).
	if err := eventually(logWait, 200*time.Millisecond, func() error {
		if b, _ := os.ReadFile(log); !bytes.Contains(b, []byte("got renewal info")) {
			return fmt.Errorf("no \"got renewal info\" in %s", log)
		}
		return nil
	}); err != nil {
		t.Fatalf("Caddy did not fetch ARI for its new certificate: %v", err)
	}

	var camp renewEarly
	adm.run(t, &camp, "certs", "renew-early", "--san-suffix", "caddy.example")
	if camp.ID == "" || camp.Matched != 1 {
		t.Fatalf("renew-early --san-suffix caddy.example: %+v, want an id and matched 1", camp)
	}
	checkFlagged(t, adm.cert(t, old), adm.campaign(t, camp.ID), before.RenewalWindow)

	chain, err := servedChain(e, caddy, name, old, caddyARIRenewWait)
	if err != nil {
		t.Fatalf("Caddy did not renew flagged certificate %s on its own: %v", serialHex(old), err)
	}
	leaf := e.checkChain(t, chain, name)
	if !leaf.NotBefore.Before(before.RenewalWindow.Start) {
		t.Errorf("renewed at %s, not before the normal window (from %s)", leaf.NotBefore, before.RenewalWindow.Start)
	}
	t.Logf("Caddy renewed %s with %s, %v before its normal window", serialHex(old), serialHex(leaf),
		before.RenewalWindow.Start.Sub(leaf.NotBefore).Round(time.Second))
	if b, _ := os.ReadFile(log); !bytes.Contains(b, []byte("certificate needs renewal based on ARI window")) {
		t.Errorf("Caddy renewed, but not on ARI's word (no \"certificate needs renewal based on ARI window\" in %s)", log)
	}
	checkReplaced(t, adm, old, leaf, camp.ID)
}
