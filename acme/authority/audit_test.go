package authority_test

import (
	"bufio"
	"crypto/x509"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/audit"
	"github.com/acmed/acmed/acme/authority"
)

// chainRecord is what a test reads of a chained record.
type chainRecord struct {
	Seq     uint64
	Event   string
	Actor   audit.Party
	Subject *audit.Party
	Details map[string]any
}

// readChain verifies the chain at path and returns its records.
func readChain(t *testing.T, path string) []chainRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := audit.Verify(f); err != nil {
		t.Fatalf("chain %s: %v", path, err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	var out []chainRecord
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r chainRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// TestAuditChain: the use cases' audit events reach the chain, each with
// its actor and subject, alongside their log lines.
func TestAuditChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.Open(path, audit.Options{Replica: "test-replica"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	e := newEnv(t, func(c *authority.Config) { c.Audit = log })
	e.run(t)
	ctx := t.Context()

	ownerKey := newKey(t)
	owner, _, err := e.a.NewAccount(ctx, ownerKey, authority.NewAccountRequest{})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := e.issued(t, owner, "a.example")
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	serial := acme.SerialHex(leaf.SerialNumber)
	if err := e.a.Revoke(ctx, authority.RevokeRequest{CertDER: der, Reason: 1, Account: owner}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.ChangeKey(ctx, owner, ownerKey, newKey(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.a.UpdateAccount(ctx, owner, authority.AccountUpdate{Deactivate: true}); err != nil {
		t.Fatal(err)
	}
	other := e.account(t)
	if _, err := e.a.AdminDeactivateAccount(ctx, "token", other.ID); err != nil {
		t.Fatal(err)
	}
	k, err := e.a.AdminCreateEABKey(ctx, "token", authority.EABKeySpec{Name: "team"})
	if err != nil {
		t.Fatal(err)
	}

	recs := readChain(t, path)
	type want struct {
		event   string
		actor   audit.Party
		subject audit.Party
	}
	ownerP := audit.Party{Kind: audit.KindAccount, ID: owner.ID}
	admin := audit.Party{Kind: audit.KindAdmin, ID: "token"}
	var o, az string
	for _, r := range recs {
		switch r.Event {
		case "order.create":
			o = r.Subject.ID
		case "authorization.validate":
			az = r.Subject.ID
		}
	}
	wants := []want{
		{"account.create", ownerP, audit.Party{Kind: "account", ID: owner.ID}},
		{"order.create", ownerP, audit.Party{Kind: "order", ID: o}},
		{"authorization.validate", ownerP, audit.Party{Kind: "authorization", ID: az}},
		{"certificate.issue", ownerP, audit.Party{Kind: "certificate", ID: serial}},
		{"certificate.revoke", ownerP, audit.Party{Kind: "certificate", ID: serial}},
		{"account.keychange", ownerP, audit.Party{Kind: "account", ID: owner.ID}},
		{"account.deactivate", ownerP, audit.Party{Kind: "account", ID: owner.ID}},
		{"account.create", audit.Party{Kind: audit.KindAccount, ID: other.ID}, audit.Party{Kind: "account", ID: other.ID}},
		{"admin.accounts.deactivate", admin, audit.Party{Kind: "account", ID: other.ID}},
		{"admin.eab.create", admin, audit.Party{Kind: "eab", ID: k.KID}},
	}
	if len(recs) != len(wants) {
		t.Fatalf("%d records, want %d: %+v", len(recs), len(wants), recs)
	}
	for i, w := range wants {
		r := recs[i]
		if r.Seq != uint64(i+1) || r.Event != w.event || r.Actor != w.actor || r.Subject == nil || *r.Subject != w.subject {
			t.Errorf("record %d = %d %s %+v %+v, want %s %+v %+v", i+1, r.Seq, r.Event, r.Actor, r.Subject, w.event, w.actor, w.subject)
		}
	}
	if v := recs[2].Details; v["outcome"] != "valid" || v["records"] == nil {
		t.Errorf("authorization.validate details %v: want the outcome and the validation records", v)
	}
	if len(e.logs.events(t, "certificate.issue")) != 1 {
		t.Error("the log line is gone with the chain configured")
	}
}
