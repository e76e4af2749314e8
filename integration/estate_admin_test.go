package integration

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

type adminCert struct {
	Serial      string `json:"serial"`
	Identifiers []struct {
		Type  string `json:"type"`
		Value string `json:"value"`
	} `json:"identifiers"`
	Account       string    `json:"account"`
	EABKey        string    `json:"eab_key"`
	Profile       string    `json:"profile"`
	NotBefore     time.Time `json:"not_before"`
	NotAfter      time.Time `json:"not_after"`
	Status        string    `json:"status"`
	ReplacedBy    string    `json:"replaced_by"`
	RenewalWindow struct {
		Start time.Time `json:"start"`
		End   time.Time `json:"end"`
	} `json:"renewal_window"`
}

type adminCertList struct {
	Certificates []adminCert `json:"certificates"`
	Next         string      `json:"next"`
}

type adminCampaign struct {
	ID             string   `json:"id"`
	Filter         string   `json:"filter"`
	Matched        int      `json:"matched"`
	Replaced       int      `json:"replaced"`
	Pending        int      `json:"pending"`
	PendingSerials []string `json:"pending_serials"`
}

func certSerials(l adminCertList) []string {
	var out []string
	for _, c := range l.Certificates {
		out = append(out, c.Serial)
	}
	slices.Sort(out)
	return out
}

// serialOf is a certificate's serial in the form the admin API shows
// (acme.SerialHex: lower-case hex of the octets).
func serialOf(leaf *x509.Certificate) string { return fmt.Sprintf("%x", leaf.SerialNumber.Bytes()) }

// opensslSerial is the serial as `openssl x509 -serial` prints it: upper
// case, with the "serial=" prefix.
func opensslSerial(n *big.Int) string {
	return "serial=" + strings.ToUpper(fmt.Sprintf("%x", n.Bytes()))
}

// TestAdminEstate drives the certificate estate commands against a real
// acmed, as an operator would: certificates issued through
// golang.org/x/crypto/acme (names prevalidated by an EAB key), listed and
// shown, an early renewal by filter, one certificate renewed by its
// client, and the campaign's progress; bad input fails in one line.
func TestAdminEstate(t *testing.T) {
	tokenFile := writeToken(t, 0o600)
	s := startAcmed(t, t.TempDir(), "--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	var k adminEABKey
	adminJSON(t, s, tokenFile, &k, "eab", "create", "--name", "payments",
		"--prevalidated", "**.estate.internal", "--prevalidated", "**.other.internal")
	secret, err := base64.RawURLEncoding.DecodeString(k.HMAC)
	if err != nil {
		t.Fatal(err)
	}
	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c.Register(ctx, &acme.Account{ExternalAccountBinding: &acme.ExternalAccountBinding{KID: k.KID, Key: secret}}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	issue := func(name string) *x509.Certificate {
		t.Helper()
		o, err := c.AuthorizeOrder(ctx, acme.DomainIDs(name))
		if err != nil || o.Status != acme.StatusReady {
			t.Fatalf("order %s: %+v, %v; want ready (prevalidated)", name, o, err)
		}
		der, err := finalize(ctx, c, o, newKey(t), name)
		if err != nil {
			t.Fatalf("finalize %s: %v", name, err)
		}
		leaf, err := x509.ParseCertificate(der[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	api, web, db := issue("api.estate.internal"), issue("web.estate.internal"), issue("db.other.internal")

	var all adminCertList
	adminJSON(t, s, tokenFile, &all, "certs", "list")
	want := []string{serialOf(api), serialOf(web), serialOf(db)}
	slices.Sort(want)
	if got := certSerials(all); !slices.Equal(got, want) || all.Next != "" {
		t.Fatalf("certs list: %q, next %q; want %q", got, all.Next, want)
	}
	for _, cert := range all.Certificates {
		if cert.EABKey != "payments" || cert.Status != "valid" || cert.Account == "" || cert.ReplacedBy != "" ||
			cert.Profile == "" || len(cert.Identifiers) != 1 || !cert.NotAfter.After(cert.NotBefore) || cert.RenewalWindow.Start.IsZero() {
			t.Errorf("certs list: %+v", cert)
		}
	}
	var page adminCertList
	adminJSON(t, s, tokenFile, &page, "certs", "list", "--limit", "2")
	if len(page.Certificates) != 2 || page.Next == "" {
		t.Fatalf("certs list --limit 2: %d certificates, next %q; want 2 and a cursor", len(page.Certificates), page.Next)
	}
	var second adminCertList
	adminJSON(t, s, tokenFile, &second, "certs", "list", "--limit", "2", "--cursor", page.Next)
	if len(second.Certificates) != 1 || second.Next != "" {
		t.Fatalf("certs list, second page: %+v", second)
	}
	var filtered adminCertList
	adminJSON(t, s, tokenFile, &filtered, "certs", "list", "--san-suffix", "estate.internal", "--status", "valid", "--expiring-within", "30d")
	if got, want := certSerials(filtered), []string{serialOf(api), serialOf(web)}; !slices.Equal(got, sorted(want)) {
		t.Fatalf("certs list --san-suffix estate.internal: %q; want %q", got, want)
	}

	var shown adminCert
	adminJSON(t, s, tokenFile, &shown, "certs", "show", opensslSerial(api.SerialNumber))
	if shown.Serial != serialOf(api) || shown.Identifiers[0].Value != "api.estate.internal" {
		t.Fatalf("certs show %s: %+v", opensslSerial(api.SerialNumber), shown)
	}
	if out, _, err := adminCLI(t, s, tokenFile, "certs", "show", serialOf(api)); err != nil || !strings.Contains(out, "status: valid") {
		t.Fatalf("certs show (text): %q, %v", out, err)
	}

	// An early renewal of everything under estate.internal.
	stdout, stderr, err := adminCLI(t, s, tokenFile, "certs", "renew-early", "--san-suffix", "estate.internal",
		"--explanation-url", "https://ops.example.com/rotation", "--json")
	if err != nil {
		t.Fatalf("renew-early: %v\n%s", err, stderr)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(stdout), &created); err != nil {
		t.Fatalf("renew-early printed %q: %v", stdout, err)
	}
	id, _ := created["id"].(string)
	if len(created) != 2 || id == "" || created["matched"] != float64(2) {
		t.Fatalf("renew-early printed %s; want {\"id\": ..., \"matched\": 2}", stdout)
	}
	adminJSON(t, s, tokenFile, &shown, "certs", "show", serialOf(web))
	if !shown.RenewalWindow.Start.After(shown.NotBefore) || shown.RenewalWindow.End.Sub(shown.RenewalWindow.Start) > time.Minute {
		t.Fatalf("a campaign certificate's window: %+v", shown.RenewalWindow)
	}
	var camp adminCampaign
	adminJSON(t, s, tokenFile, &camp, "campaigns", "show", id)
	slices.Sort(camp.PendingSerials)
	if camp.Matched != 2 || camp.Replaced != 0 || camp.Pending != 2 || !slices.Equal(camp.PendingSerials, sorted([]string{serialOf(api), serialOf(web)})) {
		t.Fatalf("campaigns show: %+v", camp)
	}

	// The client renews api.estate.internal: the same account, the same
	// names, so the new certificate replaces the old one.
	renewed := issue("api.estate.internal")
	adminJSON(t, s, tokenFile, &shown, "certs", "show", serialOf(api))
	if shown.ReplacedBy != serialOf(renewed) {
		t.Fatalf("the renewed certificate: replaced_by %q; want %s", shown.ReplacedBy, serialOf(renewed))
	}
	adminJSON(t, s, tokenFile, &camp, "campaigns", "show", id)
	if camp.Matched != 2 || camp.Replaced != 1 || camp.Pending != 1 || !slices.Equal(camp.PendingSerials, []string{serialOf(web)}) {
		t.Fatalf("campaigns show after a renewal: %+v", camp)
	}
	var camps struct {
		Campaigns []adminCampaign `json:"campaigns"`
	}
	adminJSON(t, s, tokenFile, &camps, "campaigns", "list")
	if len(camps.Campaigns) != 1 || camps.Campaigns[0].ID != id || camps.Campaigns[0].Replaced != 1 || camps.Campaigns[0].Pending != 1 {
		t.Fatalf("campaigns list: %+v", camps)
	}
	// The campaign's window opens a second after it started: poll.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var notRenewed adminCertList
		adminJSON(t, s, tokenFile, &notRenewed, "certs", "list", "--not-renewed")
		got := certSerials(notRenewed)
		if slices.Equal(got, []string{serialOf(web)}) {
			break
		}
		if len(got) != 0 || time.Now().After(deadline) { // nothing yet: the window has not opened
			t.Fatalf("certs list --not-renewed: %q; want the campaign's pending %s", got, serialOf(web))
		}
	}

	log := s.ReadLog()
	for _, want := range []string{"event=admin.certs.list caller=token", "event=admin.certs.show caller=token serial=" + serialOf(api),
		"event=admin.campaign.create caller=token campaign=" + id, "event=admin.campaign.show caller=token campaign=" + id,
		"event=admin.campaign.list caller=token"} {
		if !strings.Contains(log, want) {
			t.Errorf("no audit line %q in acmed's log", want)
		}
	}

	// Bad input: one line, exit 1, and no campaign started.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown serial", []string{"certs", "show", "0BEEF0"}, "not found: certificate 0beef0"},
		{"malformed serial", []string{"certs", "show", "not-hex"}, "serial \"not-hex\""},
		{"renew-early without a filter", []string{"certs", "renew-early", "--json"}, "no filter"},
		{"renew-early with only an explanation", []string{"certs", "renew-early", "--explanation-url", "https://ops.example.com/x"}, "no filter"},
		{"renew-early matching nothing", []string{"certs", "renew-early", "--san-suffix", "nothing.invalid", "--json"}, "no certificate matches --san-suffix nothing.invalid"},
		{"renew-early with a bad serial", []string{"certs", "renew-early", "--serial", "xyz"}, "--serial \"xyz\""},
		{"renew-early with a bad time", []string{"certs", "renew-early", "--issued-before", "yesterday"}, "--issued-before \"yesterday\""},
		{"bad status", []string{"certs", "list", "--status", "active"}, "--status \"active\""},
		{"bad duration", []string{"certs", "list", "--expiring-within", "soon"}, "--expiring-within \"soon\""},
		{"unknown campaign", []string{"campaigns", "show", "nope"}, "not found: campaign nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := adminCLI(t, s, tokenFile, tc.args...)
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit %v; want 1 (stdout %q)", err, stdout)
			}
			if lines := strings.Split(strings.TrimSpace(stderr), "\n"); len(lines) != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("stderr %q: want one line with %q", stderr, tc.want)
			}
		})
	}
	adminJSON(t, s, tokenFile, &camps, "campaigns", "list")
	if len(camps.Campaigns) != 1 {
		t.Fatalf("campaigns after refused requests: %+v; want still one", camps)
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
