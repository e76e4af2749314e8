package challengetest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

type apiEnv struct {
	d   *DNS
	h   *HTTP01
	a   *TLSALPN01
	api http.Handler
}

func newAPIEnv(t *testing.T) *apiEnv {
	t.Helper()
	e := &apiEnv{d: StartDNS(t), h: StartHTTP01(t), a: StartTLSALPN01(t)}
	e.api = NewAPI(e.d, e.h, e.a)
	return e
}

func post(t *testing.T, api http.Handler, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	return rec
}

// lookup is the answer d gives over UDP, as "TYPE data" strings, or the
// rcode name when it is not NOERROR.
func (e *apiEnv) lookup(t *testing.T, name string, qtype uint16) []string {
	t.Helper()
	r := exchange(t, e.d, "udp", dns.Fqdn(name), qtype, 0)
	if r.Rcode != dns.RcodeSuccess {
		return []string{dns.RcodeToString[r.Rcode]}
	}
	return rdata(r.Answer)
}

func wantDNS(name string, qtype uint16, want ...string) func(*testing.T, *apiEnv) {
	return func(t *testing.T, e *apiEnv) {
		t.Helper()
		if got := e.lookup(t, name, qtype); !slices.Equal(got, want) {
			t.Errorf("%s %s: %q, want %q", dns.TypeToString[qtype], name, got, want)
		}
	}
}

func wantHTTP01(token string, status int, body string) func(*testing.T, *apiEnv) {
	return func(t *testing.T, e *apiEnv) {
		t.Helper()
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, http01Prefix+token, nil))
		if rec.Code != status || (status == http.StatusOK && rec.Body.String() != body) {
			t.Errorf("GET %s: %d %q, want %d %q", token, rec.Code, rec.Body, status, body)
		}
	}
}

func wantTLSALPN01(serverName string, ok bool) func(*testing.T, *apiEnv) {
	return func(t *testing.T, e *apiEnv) {
		t.Helper()
		if _, err := handshake(t, e.a, serverName, ACMETLS1Protocol); (err == nil) != ok {
			t.Errorf("handshake for %s: %v, want success %v", serverName, err, ok)
		}
	}
}

func TestAPI(t *testing.T) {
	digest := sha256.Sum256([]byte("tok.thumb"))
	rawValue := base64.RawURLEncoding.EncodeToString(digest[:])
	type call struct{ path, body string }
	tests := []struct {
		name   string
		calls  []call // all must answer 200
		path   string
		body   string
		status int
		check  func(*testing.T, *apiEnv)
	}{
		{"set-txt adds", []call{{"/set-txt", `{"host":"_acme-challenge.a.test.","value":"one"}`}},
			"/set-txt", `{"host":"_acme-challenge.a.test","value":"two"}`, 200,
			wantDNS("_acme-challenge.a.test", dns.TypeTXT, "TXT one", "TXT two")},
		{"set-txt without value", nil, "/set-txt", `{"host":"a.test"}`, 400, nil},
		{"set-txt without host", nil, "/set-txt", `{"value":"v"}`, 400, nil},
		{"clear-txt", []call{{"/set-txt", `{"host":"a.test","value":"one"}`}, {"/set-txt", `{"host":"a.test","value":"two"}`}},
			"/clear-txt", `{"host":"a.test"}`, 200, wantDNS("a.test", dns.TypeTXT)},
		{"add-a", nil, "/add-a", `{"host":"a.test","addresses":["192.0.2.1","192.0.2.2"]}`, 200,
			wantDNS("a.test", dns.TypeA, "A 192.0.2.1", "A 192.0.2.2")},
		{"add-a appends", []call{{"/add-a", `{"host":"a.test","addresses":["192.0.2.1"]}`}},
			"/add-a", `{"host":"a.test","addresses":["192.0.2.2"]}`, 200,
			wantDNS("a.test", dns.TypeA, "A 192.0.2.1", "A 192.0.2.2")},
		{"add-a IPv6", nil, "/add-a", `{"host":"a.test","addresses":["2001:db8::1"]}`, 400, nil},
		{"add-a bad address", nil, "/add-a", `{"host":"a.test","addresses":["nope"]}`, 400, nil},
		{"add-a no addresses", nil, "/add-a", `{"host":"a.test","addresses":[]}`, 400, nil},
		{"add-aaaa", nil, "/add-aaaa", `{"host":"a.test","addresses":["2001:db8::1"]}`, 200,
			wantDNS("a.test", dns.TypeAAAA, "AAAA 2001:db8::1")},
		{"add-aaaa keeps default A", nil, "/add-aaaa", `{"host":"a.test","addresses":["2001:db8::1"]}`, 200,
			wantDNS("a.test", dns.TypeA, "A 127.0.0.1")},
		{"add-aaaa IPv4", nil, "/add-aaaa", `{"host":"a.test","addresses":["192.0.2.1"]}`, 400, nil},
		{"clear-a", []call{{"/add-a", `{"host":"a.test","addresses":["192.0.2.1"]}`}},
			"/clear-a", `{"host":"a.test"}`, 200, wantDNS("a.test", dns.TypeA, "A 127.0.0.1")},
		{"clear-aaaa", []call{{"/add-aaaa", `{"host":"a.test","addresses":["2001:db8::1"]}`}},
			"/clear-aaaa", `{"host":"a.test"}`, 200, wantDNS("a.test", dns.TypeAAAA)},
		{"set-cname", nil, "/set-cname", `{"host":"a.test","target":"b.test"}`, 200,
			wantDNS("a.test", dns.TypeA, "CNAME b.test.", "A 127.0.0.1")},
		{"clear-cname", []call{{"/set-cname", `{"host":"a.test","target":"b.test"}`}},
			"/clear-cname", `{"host":"a.test"}`, 200, wantDNS("a.test", dns.TypeA, "A 127.0.0.1")},
		{"set-default-ipv4", nil, "/set-default-ipv4", `{"ip":"192.0.2.9"}`, 200, wantDNS("x.test", dns.TypeA, "A 192.0.2.9")},
		{"set-default-ipv4 none", nil, "/set-default-ipv4", `{"ip":""}`, 200, wantDNS("x.test", dns.TypeA)},
		{"set-default-ipv6", nil, "/set-default-ipv6", `{"ip":"::1"}`, 200, wantDNS("x.test", dns.TypeAAAA, "AAAA ::1")},
		{"set-default-ipv6 IPv4", nil, "/set-default-ipv6", `{"ip":"127.0.0.1"}`, 400, nil},
		{"present", nil, "/present", `{"fqdn":"_acme-challenge.a.test.","value":"v1"}` + "\n", 200,
			wantDNS("_acme-challenge.a.test", dns.TypeTXT, "TXT v1")},
		{"cleanup removes only its value", []call{
			{"/present", `{"fqdn":"_acme-challenge.a.test.","value":"v1"}`},
			{"/present", `{"fqdn":"_acme-challenge.a.test.","value":"v2"}`},
		}, "/cleanup", `{"fqdn":"_acme-challenge.a.test.","value":"v1"}`, 200,
			wantDNS("_acme-challenge.a.test", dns.TypeTXT, "TXT v2")},
		{"present RAW mode", nil, "/present", `{"domain":"*.a.test","token":"tok","keyAuth":"tok.thumb"}`, 200,
			wantDNS("_acme-challenge.a.test", dns.TypeTXT, "TXT "+rawValue)},
		{"present without value", nil, "/present", `{"fqdn":"_acme-challenge.a.test."}`, 400, nil},
		{"add-http01", nil, "/add-http01", `{"token":"tok","content":"tok.thumb"}`, 200, wantHTTP01("tok", 200, "tok.thumb")},
		{"add-http01 without content", nil, "/add-http01", `{"token":"tok"}`, 400, nil},
		{"add-http01 slash in token", nil, "/add-http01", `{"token":"a/b","content":"x"}`, 400, nil},
		{"del-http01", []call{{"/add-http01", `{"token":"tok","content":"tok.thumb"}`}},
			"/del-http01", `{"token":"tok"}`, 200, wantHTTP01("tok", 404, "")},
		{"add-tlsalpn01", nil, "/add-tlsalpn01", `{"host":"a.test","content":"tok.thumb"}`, 200, wantTLSALPN01("a.test", true)},
		{"add-tlsalpn01 IP", nil, "/add-tlsalpn01", `{"host":"127.0.0.1","content":"tok.thumb"}`, 200, wantTLSALPN01("1.0.0.127.in-addr.arpa", true)},
		{"add-tlsalpn01 bad host", nil, "/add-tlsalpn01", `{"host":"a b","content":"x"}`, 400, nil},
		{"del-tlsalpn01", []call{{"/add-tlsalpn01", `{"host":"a.test","content":"tok.thumb"}`}},
			"/del-tlsalpn01", `{"host":"a.test"}`, 200, wantTLSALPN01("a.test", false)},
		{"bad JSON", nil, "/set-txt", `{"host":`, 400, nil},
		{"wrong JSON type", nil, "/set-txt", `{"host":1,"value":"v"}`, 400, nil},
		{"empty body", nil, "/set-txt", ``, 400, nil},
		{"two objects", nil, "/set-txt", `{"host":"a.test","value":"v"} {}`, 400, nil},
		{"unknown endpoint", nil, "/nope", `{}`, 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newAPIEnv(t)
			for _, c := range tt.calls {
				if rec := post(t, e.api, c.path, c.body); rec.Code != 200 {
					t.Fatalf("setup %s: %d %s", c.path, rec.Code, rec.Body)
				}
			}
			rec := post(t, e.api, tt.path, tt.body)
			if rec.Code != tt.status {
				t.Fatalf("%s: %d %q, want %d", tt.path, rec.Code, rec.Body, tt.status)
			}
			if tt.status == 400 {
				msg := strings.TrimSuffix(rec.Body.String(), "\n")
				if msg == "" || strings.Contains(msg, "\n") {
					t.Errorf("400 body %q, want one line", rec.Body)
				}
			}
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestAPIMethod(t *testing.T) {
	e := newAPIEnv(t)
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/set-txt", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /set-txt: %d, want 405", rec.Code)
	}
}

func TestAPINilResponders(t *testing.T) {
	d := StartDNS(t)
	tests := []struct {
		name   string
		api    http.Handler
		path   string
		body   string
		status int
	}{
		{"no DNS", NewAPI(nil, StartHTTP01(t), nil), "/set-txt", `{"host":"a.test","value":"v"}`, 404},
		{"no DNS present", NewAPI(nil, nil, nil), "/present", `{"fqdn":"a.test.","value":"v"}`, 404},
		{"no HTTP01", NewAPI(d, nil, nil), "/add-http01", `{"token":"t","content":"c"}`, 404},
		{"no TLSALPN01", NewAPI(d, nil, nil), "/add-tlsalpn01", `{"host":"a.test","content":"c"}`, 404},
		{"DNS alone", NewAPI(d, nil, nil), "/set-txt", `{"host":"a.test","value":"v"}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rec := post(t, tt.api, tt.path, tt.body); rec.Code != tt.status {
				t.Fatalf("%s: %d %q, want %d", tt.path, rec.Code, rec.Body, tt.status)
			}
		})
	}
}
