package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// auditRecord is a chained record as the tests read it.
type auditRecord struct {
	Seq     uint64 `json:"seq"`
	Replica string `json:"replica"`
	Event   string `json:"event"`
	Actor   struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"actor"`
	Subject *struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"subject"`
	Details map[string]any `json:"details"`
}

func (r auditRecord) subject() string {
	if r.Subject == nil {
		return ""
	}
	return r.Subject.Kind + ":" + r.Subject.ID
}

// readAudit returns the records of the chain file and the hash of its
// last line.
func readAudit(t *testing.T, file string) ([]auditRecord, string) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var recs []auditRecord
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r auditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %q: %v", file, sc.Text(), err)
		}
		recs = append(recs, r)
		h := sha256.Sum256(sc.Bytes())
		last = hex.EncodeToString(h[:])
	}
	return recs, last
}

// auditVerify runs `acmed admin audit verify FILE` with no admin flags nor
// ACMED_ variables, as on a machine that only has the file.
func auditVerify(t *testing.T, file string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, acmedBinary, append([]string{"admin", "audit", "verify", file}, args...)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Dir = t.TempDir() // no acmed-data here
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// opensslSerialOf is what `openssl x509 -serial` prints for the leaf,
// lower-cased: the form audit records must carry.
func opensslSerialOf(t *testing.T, der []byte) string {
	t.Helper()
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("openssl is not installed")
		}
		t.Skip("openssl is not installed")
	}
	f := filepath.Join(t.TempDir(), "leaf.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "x509", "-in", f, "-noout", "-serial").Output()
	if err != nil {
		t.Fatalf("openssl x509 -serial: %v", err)
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "serial=")
	if !ok {
		t.Fatalf("openssl printed %q", out)
	}
	return strings.ToLower(s)
}

// TestAuditLog: a real acmed writes the chain as clients and an operator
// act; `acmed admin audit verify` finds it intact from the file alone; a
// restart continues it; every kind of tampering is named; a damaged tail
// stops acmed from starting.
func TestAuditLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dns := challengetest.StartDNS(t)
	h := challengetest.StartHTTP01(t)
	data := filepath.Join(t.TempDir(), "data")
	file := filepath.Join(t.TempDir(), "audit.log")
	tokenFile := writeToken(t, 0o600)
	flags := []string{"--resolver", dns.Addr, "--http01-port", strconv.Itoa(h.Port), "--audit-log", file,
		"--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile}
	s := startAcmed(t, data, append(flags, "--replica-name", "replica-a")...)

	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	acct, err := c.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@example.com"}}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	acctID := path.Base(acct.URI)
	if _, err := c.UpdateReg(ctx, &acme.Account{Contact: []string{"mailto:pki@example.com"}}); err != nil {
		t.Fatal(err)
	}
	der, _ := issue(t, ctx, c, h, "audit.example")
	serial := opensslSerialOf(t, der[0])
	if err := c.RevokeCert(ctx, nil, der[0], acme.CRLReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	der2, certKey := issue(t, ctx, c, h, "key.audit.example")
	serial2 := opensslSerialOf(t, der2[0])
	if err := c.RevokeCert(ctx, certKey, der2[0], acme.CRLReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	if err := c.AccountKeyRollover(ctx, newKey(t)); err != nil {
		t.Fatal(err)
	}
	var k struct {
		KID  string `json:"kid"`
		HMAC string `json:"hmac"`
	}
	adminJSON(t, s, tokenFile, &k, "eab", "create", "--name", "team")
	secret, _ := base64.RawURLEncoding.DecodeString(k.HMAC)
	bound := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	boundAcct, err := bound.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{KID: k.KID, Key: secret}}, acme.AcceptTOS)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := adminCLI(t, s, tokenFile, "accounts", "deactivate", path.Base(boundAcct.URI)); err != nil {
		t.Fatal(err)
	}
	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatal(err)
	}
	s.Stop()

	out, stderr, err := auditVerify(t, file)
	recs, last := readAudit(t, file)
	want := "intact: " + strconv.Itoa(len(recs)) + " records, replica replica-a, last seq " + strconv.Itoa(len(recs)) + ", last hash " + last + "\n"
	if err != nil || out != want {
		t.Fatalf("audit verify: %v %q %s\nwant %q", err, out, stderr, want)
	}

	// Each event once, in order, with its actor and subject.
	type ev struct{ event, actor, subject string }
	account, admin := "account:"+acctID, "admin:token"
	wants := []ev{
		{"server.start", "system:replica-a", ""},
		{"account.create", account, account},
		{"account.update", account, account},
		{"order.create", account, "order:"},
		{"authorization.validate", account, "authorization:"},
		{"certificate.issue", account, "certificate:" + serial},
		{"certificate.revoke", account, "certificate:" + serial},
		{"order.create", account, "order:"},
		{"authorization.validate", account, "authorization:"},
		{"certificate.issue", account, "certificate:" + serial2},
		{"certificate.revoke", "certificate-key:", "certificate:" + serial2},
		{"account.keychange", account, account},
		{"admin.eab.create", admin, "eab:" + k.KID},
		{"account.create", "eab:" + k.KID, "account:" + path.Base(boundAcct.URI)},
		{"admin.accounts.deactivate", admin, "account:" + path.Base(boundAcct.URI)},
		{"account.deactivate", account, account},
		{"server.stop", "system:replica-a", ""},
	}
	var got []ev
	for _, r := range recs {
		if strings.HasPrefix(r.Event, "admin.") && r.Event != "admin.eab.create" && r.Event != "admin.accounts.deactivate" {
			continue // the CLI's reads (none expected, but not this test's point)
		}
		subject := r.subject()
		if r.Event == "order.create" || r.Event == "authorization.validate" {
			subject = r.Subject.Kind + ":"
		}
		got = append(got, ev{r.Event, r.Actor.Kind + ":" + r.Actor.ID, subject})
	}
	if len(got) != len(wants) {
		t.Fatalf("events\n%v\nwant\n%v", got, wants)
	}
	for i := range wants {
		if got[i] != wants[i] {
			t.Errorf("event %d = %+v, want %+v", i+1, got[i], wants[i])
		}
	}
	for _, r := range recs {
		if r.Event == "authorization.validate" {
			if recs, _ := r.Details["records"].([]any); r.Details["outcome"] != "valid" || len(recs) == 0 {
				t.Errorf("authorization.validate details %v: want valid with validation records", r.Details)
			}
		}
	}

	// A restart continues the chain under the file's replica name.
	s = startAcmed(t, data, flags...)
	c2 := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c2.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	after, _ := readAudit(t, file)
	if _, _, err := auditVerify(t, file); err != nil {
		t.Fatalf("chain after the restart: %v", err)
	}
	restart := after[len(recs)]
	if restart.Event != "server.start" || restart.Seq != uint64(len(recs)+1) || restart.Replica != "replica-a" ||
		restart.Details["continues_seq"] != float64(len(recs)) || restart.Details["continues_hash"] != last {
		t.Fatalf("first record after the restart: %+v, want server.start continuing seq %d hash %s", restart, len(recs), last)
	}
	if got := after[len(recs)+1]; got.Event != "account.create" {
		t.Fatalf("record after the restart's start: %+v", got)
	}

	t.Run("tampering", func(t *testing.T) { auditTamper(t, file) })

	t.Run("damaged tail refused at start", func(t *testing.T) {
		raw, _ := os.ReadFile(file)
		damaged := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(damaged, raw[:len(raw)-5], 0o600); err != nil {
			t.Fatal(err)
		}
		lines := strconv.Itoa(bytes.Count(raw, []byte("\n")))
		refusedStart(t, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--audit-log", damaged},
			"--audit-log "+damaged+": line "+lines+": truncated")
		if again, _ := os.ReadFile(damaged); !bytes.Equal(again, raw[:len(raw)-5]) {
			t.Fatal("a refused start changed the file")
		}
	})
	t.Run("another replica's file refused at start", func(t *testing.T) {
		refusedStart(t, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--audit-log", file, "--replica-name", "replica-b"},
			`written by replica "replica-a", not "replica-b"`)
	})
}

// auditTamper edits copies of an intact chain file in every way the
// chain must show, and checks that verify names the first broken line.
func auditTamper(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) < 10 {
		t.Fatalf("%d lines: too short a chain to tamper with", len(lines))
	}
	join := func(l []string) string { return strings.Join(l, "\n") + "\n" }
	edit := func(f func(l []string) []string) string { return join(f(append([]string(nil), lines...))) }
	n := len(lines)
	for _, tc := range []struct {
		name, file, want string
	}{
		{"edit a field", edit(func(l []string) []string {
			l[4] = strings.Replace(l[4], `"event":"`, `"event":"x`, 1)
			return l
		}), "line 6: prev does not match line 5's hash"},
		{"delete a line", edit(func(l []string) []string { return append(l[:6], l[7:]...) }), "line 7: seq 8 after 6"},
		{"reorder", edit(func(l []string) []string { l[2], l[3] = l[3], l[2]; return l }), "line 3: seq 4 after 2"},
		{"truncate the last line", join(lines)[:len(raw)-9], "line " + strconv.Itoa(n) + ": truncated: no newline at its end"},
		{"change prev", edit(func(l []string) []string {
			i := strings.Index(l[8], `"prev":"`) + len(`"prev":"`)
			l[8] = l[8][:i] + strings.Repeat("f", 64) + l[8][i+64:]
			return l
		}), "line 9: prev does not match line 8's hash"},
		{"not JSON", edit(func(l []string) []string { l[3] = "{" + l[3]; return l }), "line 4: not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "audit.log")
			if err := os.WriteFile(f, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			out, stderr, err := auditVerify(t, f)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || out != "" {
				t.Fatalf("verify of a tampered file: %v, stdout %q; want exit status 1", err, out)
			}
			want := "acmed: " + f + ": broken: " + tc.want
			if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, want) {
				t.Fatalf("verify said %q, want one line starting %q", stderr, want)
			}
		})
	}
}

// refusedStart runs acmed, which must exit 1 with one line on stderr
// holding want.
func refusedStart(t *testing.T, args []string, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, acmedBinary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("acmed %q: %v, stderr %q; want exit status 1 and one line holding %q", args, err, stderr.String(), want)
	}
}

// TestAuditLogStdout: with --audit-log -, standard output carries the
// chain alone (what acmed prints for people goes to standard error), and
// what a collector captured verifies.
func TestAuditLogStdout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	out, err := os.Create(filepath.Join(dir, "captured.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	logFile := filepath.Join(dir, "acmed.log")
	errFile, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer errFile.Close()
	cmd := exec.Command(acmedBinary, "serve", "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
		"--audit-log", "-", "--replica-name", "stdout-replica")
	cmd.Env = append(os.Environ(), "ACMED_DRAIN_DELAY=0s")
	cmd.Stdout, cmd.Stderr = out, errFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	t.Cleanup(stop)

	var directory string
	for deadline := time.Now().Add(30 * time.Second); directory == "" && time.Now().Before(deadline); {
		raw, _ := os.ReadFile(logFile)
		for line := range strings.Lines(string(raw)) {
			if u, ok := strings.CutPrefix(strings.TrimSpace(line), "directory:"); ok {
				directory = strings.TrimSpace(u)
			}
		}
		if directory == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if directory == "" {
		raw, _ := os.ReadFile(logFile)
		t.Fatalf("acmed printed no directory URL on stderr:\n%s", raw)
	}
	s := &server{dir: directory, data: filepath.Join(dir, "data")}
	rootPEM, err := os.ReadFile(filepath.Join(s.data, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.root = x509.NewCertPool()
	if !s.root.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	stop()

	stdout, stderr, err := auditVerify(t, out.Name())
	if err != nil || !strings.HasPrefix(stdout, "intact: 3 records, replica stdout-replica, last seq 3") {
		t.Fatalf("verify of the captured output: %v %q %s", err, stdout, stderr)
	}
	recs, _ := readAudit(t, out.Name())
	if recs[0].Event != "server.start" || recs[1].Event != "account.create" || recs[2].Event != "server.stop" {
		t.Fatalf("captured events %+v", recs)
	}
}
