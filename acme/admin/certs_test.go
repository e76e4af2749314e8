package admin_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/admin"
)

const day = 24 * time.Hour

// seedEstate puts certificates straight into the store:
//
//	0a01 api.example.com  acct-1 EAB key "payments"  expires in a day, past its window
//	0a02 www.example.com  acct-1                     29 days left
//	0a03 db.example.net   acct-2 profile server      20 days left
//	0a04 old.example.com  acct-1                     expired
func (e *env) seedEstate(t *testing.T) time.Time {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	for _, c := range []*acme.Certificate{
		{Serial: "0a01", AccountID: "acct-1", EABKeyName: "payments", Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "api.example.com"}},
			Profile: "mtls", NotBefore: now.Add(-29 * day), NotAfter: now.Add(day)},
		{Serial: "0a02", AccountID: "acct-1", Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "www.example.com"}},
			Profile: "mtls", NotBefore: now.Add(-day), NotAfter: now.Add(29 * day)},
		{Serial: "0a03", AccountID: "acct-2", Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "db.example.net"}},
			Profile: "server", NotBefore: now.Add(-10 * day), NotAfter: now.Add(20 * day)},
		{Serial: "0a04", AccountID: "acct-1", Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: "old.example.com"}},
			Profile: "mtls", NotBefore: now.Add(-31 * day), NotAfter: now.Add(-day)},
	} {
		c.OrderID, c.ChainPEM = c.AccountID+".order-"+c.Serial, []byte("not a real chain")
		if err := e.store.PutCertificate(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return now
}

func serials(t *testing.T, b map[string]any) []string {
	t.Helper()
	list, ok := b["certificates"].([]any)
	if !ok {
		t.Fatalf("no certificates list in %v", b)
	}
	var out []string
	for _, c := range list {
		out = append(out, c.(map[string]any)["serial"].(string))
	}
	return out
}

func TestCertsEndpoints(t *testing.T) {
	e := newEnv(t, token, nil)
	e.seedEstate(t)
	c, base := e.client(), e.srv.URL+admin.Prefix
	var campaignID string
	for _, tc := range []struct {
		name, method, path string
		want               int
		check              func(t *testing.T, body map[string]any)
	}{
		{"list everything", "GET", "/certs", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); !slices.Equal(got, []string{"0a04", "0a01", "0a03", "0a02"}) {
				t.Errorf("serials %q; want every certificate, soonest notAfter first", got)
			}
			first := b["certificates"].([]any)[1].(map[string]any)
			for _, f := range []string{"serial", "identifiers", "account", "eab_key", "profile", "not_before", "not_after", "status", "replaced_by", "renewal_window"} {
				if _, ok := first[f]; !ok {
					t.Errorf("field %q missing from %v", f, first)
				}
			}
			if first["eab_key"] != "payments" || first["status"] != "valid" || first["account"] != "acct-1" || first["replaced_by"] != "" {
				t.Errorf("certificate 0a01: %v", first)
			}
			ids := first["identifiers"].([]any)
			if len(ids) != 1 || ids[0].(map[string]any)["value"] != "api.example.com" || ids[0].(map[string]any)["type"] != "dns" {
				t.Errorf("identifiers %v", ids)
			}
		}},
		{"one page", "GET", "/certs?limit=2", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); len(got) != 2 || b["next"] == nil {
				t.Errorf("serials %q, next %v; want 2 and a next cursor", got, b["next"])
			}
		}},
		{"expiring within a week", "GET", "/certs?expiring_within=168h", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); !slices.Equal(got, []string{"0a01"}) {
				t.Errorf("serials %q; want 0a01", got)
			}
		}},
		{"not renewed", "GET", "/certs?not_renewed=true", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); !slices.Equal(got, []string{"0a01"}) {
				t.Errorf("serials %q; want 0a01", got)
			}
		}},
		{"expired", "GET", "/certs?status=expired", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); !slices.Equal(got, []string{"0a04"}) {
				t.Errorf("serials %q; want 0a04", got)
			}
		}},
		{"by suffix, profile and account", "GET", "/certs?san_suffix=example.net&profile=server&account=acct-2", 200, func(t *testing.T, b map[string]any) {
			if got := serials(t, b); !slices.Equal(got, []string{"0a03"}) {
				t.Errorf("serials %q; want 0a03", got)
			}
		}},
		{"bad status", "GET", "/certs?status=active", 400, nil},
		{"bad duration", "GET", "/certs?expiring_within=7d", 400, nil},
		{"misspelt filter", "GET", "/certs?san_sufix=example.com", 400, nil},
		{"show as openssl prints it", "GET", "/certs/A01", 200, func(t *testing.T, b map[string]any) {
			if b["serial"] != "0a01" {
				t.Errorf("serial %v; want 0a01", b["serial"])
			}
		}},
		{"show an unknown serial", "GET", "/certs/beef", 404, func(t *testing.T, b map[string]any) {
			if msg := b["error"].(string); !strings.Contains(msg, "beef") {
				t.Errorf("error %q does not name the serial", msg)
			}
		}},
		{"show a malformed serial", "GET", "/certs/xyz", 400, nil},
		{"campaign without a filter", "POST", "/campaigns", 400, nil},
		{"campaign with only an explanation", "POST", "/campaigns?explanation_url=https://ops.example.com/why", 400, nil},
		{"campaign with a misspelt filter", "POST", "/campaigns?profile=mtls&san_sufix=example.com", 400, nil},
		{"campaign with a bad time", "POST", "/campaigns?issued_before=yesterday", 400, nil},
		{"campaign matching nothing", "POST", "/campaigns?san_suffix=nothing.invalid", 422, func(t *testing.T, b map[string]any) {
			if msg := b["error"].(string); !strings.Contains(msg, "no certificate matches") {
				t.Errorf("error %q", msg)
			}
		}},
		{"no campaign was recorded", "GET", "/campaigns", 200, func(t *testing.T, b map[string]any) {
			if cs := b["campaigns"].([]any); len(cs) != 0 {
				t.Errorf("campaigns %v; want none", cs)
			}
		}},
		{"campaign by suffix", "POST", "/campaigns?san_suffix=example.com&explanation_url=https://ops.example.com/why", 200, func(t *testing.T, b map[string]any) {
			campaignID, _ = b["id"].(string)
			if campaignID == "" || b["matched"] != float64(2) || b["pending"] != float64(2) || b["replaced"] != float64(0) {
				t.Errorf("campaign %v; want an id and 2 matched (0a01, 0a02: 0a04 has expired)", b)
			}
		}},
		{"campaigns", "GET", "/campaigns", 200, func(t *testing.T, b map[string]any) {
			cs := b["campaigns"].([]any)
			if len(cs) != 1 || cs[0].(map[string]any)["id"] != campaignID || cs[0].(map[string]any)["pending"] != float64(2) {
				t.Errorf("campaigns %v", cs)
			}
		}},
		{"campaign", "GET", "/campaigns/{id}", 200, func(t *testing.T, b map[string]any) {
			var pending []string
			for _, s := range b["pending_serials"].([]any) {
				pending = append(pending, s.(string))
			}
			slices.Sort(pending)
			if b["matched"] != float64(2) || b["replaced"] != float64(0) || b["pending"] != float64(2) ||
				!slices.Equal(pending, []string{"0a01", "0a02"}) || b["explanation_url"] != "https://ops.example.com/why" {
				t.Errorf("campaign %v", b)
			}
		}},
		{"the campaign's certificate", "GET", "/certs/0a02", 200, func(t *testing.T, b map[string]any) {
			w := b["renewal_window"].(map[string]any)
			start, _ := time.Parse(time.RFC3339, w["start"].(string))
			end, _ := time.Parse(time.RFC3339, w["end"].(string))
			if b["campaign"] != campaignID || end.Sub(start) > time.Minute || time.Until(end) > time.Minute {
				t.Errorf("certificate after the campaign: %v", b)
			}
		}},
		{"an unknown campaign", "GET", "/campaigns/nope", 404, nil},
		{"campaign by PUT", "PUT", "/campaigns", 405, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := call(t, c, tc.method, base+strings.ReplaceAll(tc.path, "{id}", campaignID), token)
			if status != tc.want {
				t.Fatalf("status %d, body %v; want %d", status, body, tc.want)
			}
			if status != 200 {
				if msg, _ := body["error"].(string); msg == "" || strings.Contains(msg, "\n") {
					t.Errorf("error body %v: want a one-line message", body)
				}
			}
			if tc.check != nil {
				tc.check(t, body)
			}
		})
	}
	log := e.logs.String()
	for _, want := range []string{"event=admin.certs.list caller=token", "event=admin.certs.show caller=token serial=0a01",
		"event=admin.campaign.create caller=token campaign=" + campaignID, "event=admin.campaign.show", "event=admin.campaign.list"} {
		if !strings.Contains(log, want) {
			t.Errorf("no audit line %q", want)
		}
	}
}

// The dashboard is HTML behind the admin authentication, and loads nothing
// from elsewhere.
func TestDashboardHTTP(t *testing.T) {
	e := newEnv(t, token, nil)
	e.seedEstate(t)
	c := e.client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	get := func(path, bearer string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "GET", e.srv.URL+path, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := get(admin.DashboardPath, ""); resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "0a01") {
		t.Fatalf("without credentials: %d %q; want 401 and nothing shown", resp.StatusCode, body)
	}
	if resp, _ := get("/admin", token); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != admin.DashboardPath {
		t.Fatalf("/admin: %d to %q; want a redirect to %s", resp.StatusCode, resp.Header.Get("Location"), admin.DashboardPath)
	}
	resp, body := get(admin.DashboardPath, token)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("dashboard: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, want := range []string{"0a01", "api.example.com", "Expiring within 7d", "Not renewed"} {
		if !strings.Contains(body, want) {
			t.Errorf("dashboard does not show %q", want)
		}
	}
	for _, never := range []string{"<script", "http://", "src="} {
		if strings.Contains(body, never) {
			t.Errorf("dashboard holds %q: it must load nothing", never)
		}
	}
	if !strings.Contains(e.logs.String(), "event=admin.dashboard caller=token") {
		t.Error("no audit line for the dashboard")
	}
}
