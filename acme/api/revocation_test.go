package api_test

import (
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/crl"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage/embedded"
)

// crlEnv serves the API's revocation routes with a real CRL publisher
// over the embedded store and the built-in CA, on the ACME handler and on
// RevocationHandler's.
type crlEnv struct {
	acme, plain string // base URLs
	pub         *crl.Publisher
	ca          *ca.Local
}

func newCRLEnv(t *testing.T) *crlEnv {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	acmeSrv := httptest.NewUnstartedServer(nil)
	base := "http://" + acmeSrv.Listener.Addr().String()
	pub, err := crl.New(crl.Config{Store: store, Issuer: l, BaseURL: base, Holder: "test", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{BaseURL: base, Logger: log, CRLs: pub})
	acmeSrv.Config.Handler = s
	acmeSrv.Start()
	t.Cleanup(acmeSrv.Close)
	plain := httptest.NewServer(s.RevocationHandler())
	t.Cleanup(plain.Close)
	return &crlEnv{acme: base, plain: plain.URL, pub: pub, ca: l}
}

func do(t *testing.T, method, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func problemOf(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	var p struct {
		Type   string
		Status int
	}
	if resp.StatusCode != status || resp.Header.Get("Content-Type") != "application/problem+json" ||
		json.Unmarshal(body, &p) != nil || p.Status != status || !strings.HasPrefix(p.Type, "urn:ietf:params:acme:error:") {
		t.Fatalf("got %d %s %s, want a problem document with status %d", resp.StatusCode, resp.Header.Get("Content-Type"), body, status)
	}
}

func TestCRLRoute(t *testing.T) {
	e := newCRLEnv(t)
	path := "/crl/" + e.pub.Issuer() + ".crl"
	if got, want := e.pub.DistributionPoint(), e.acme+path; got != want {
		t.Fatalf("DistributionPoint %q, want %q", got, want)
	}
	for _, base := range []string{e.acme, e.plain} {
		resp, body := do(t, http.MethodGet, base+path)
		problemOf(t, resp, body, http.StatusServiceUnavailable) // none built yet
		if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("before the first build: Retry-After %q, Cache-Control %q", resp.Header.Get("Retry-After"), resp.Header.Get("Cache-Control"))
		}
	}
	built, err := e.pub.Build(t.Context(), "test")
	if err != nil {
		t.Fatal(err)
	}
	for name, base := range map[string]string{"ACME listener": e.acme, "revocation listener": e.plain} {
		t.Run(name, func(t *testing.T) {
			resp, body := do(t, http.MethodGet, base+path)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
				t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			list, err := x509.ParseRevocationList(body)
			if err != nil {
				t.Fatal(err)
			}
			if err := list.CheckSignatureFrom(e.ca.Intermediate()); err != nil || list.Number.Uint64() != built.Number {
				t.Fatalf("CRL number %v (want %d), signature: %v", list.Number, built.Number, err)
			}
			// max-age: --crl-refresh (1m); stale-if-error: until
			// nextUpdate (24h), give or take the seconds this took.
			cc := resp.Header.Get("Cache-Control")
			if !strings.HasPrefix(cc, "public, max-age=60, stale-if-error=86") {
				t.Errorf("Cache-Control %q", cc)
			}
			if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err != nil || !lm.Equal(built.ThisUpdate) {
				t.Errorf("Last-Modified %q, want thisUpdate %v", resp.Header.Get("Last-Modified"), built.ThisUpdate)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			for _, cond := range [][]string{{"If-None-Match", etag}, {"If-Modified-Since", resp.Header.Get("Last-Modified")}} {
				if resp, _ := do(t, http.MethodGet, base+path, cond...); resp.StatusCode != http.StatusNotModified {
					t.Errorf("GET with %s: %d, want 304", cond[0], resp.StatusCode)
				}
			}
			if resp, _ := do(t, http.MethodGet, base+path, "If-None-Match", `"other"`); resp.StatusCode != http.StatusOK {
				t.Errorf("GET with another ETag: %d, want 200", resp.StatusCode)
			}
			if resp, body := do(t, http.MethodHead, base+path); resp.StatusCode != http.StatusOK || len(body) != 0 {
				t.Errorf("HEAD: %d with %d bytes", resp.StatusCode, len(body))
			}

			for _, bad := range []string{"/crl/0011223344556677.crl", "/crl/" + e.pub.Issuer(), "/crl/.crl", "/crl/" + e.pub.Issuer() + ".pem"} {
				resp, body := do(t, http.MethodGet, base+bad)
				problemOf(t, resp, body, http.StatusNotFound)
				if resp.Header.Get("Cache-Control") != "no-store" {
					t.Errorf("GET %s: Cache-Control %q, want no-store", bad, resp.Header.Get("Cache-Control"))
				}
			}
		})
	}
	// Only the revocation routes are on the plain listener.
	resp, body := do(t, http.MethodGet, e.plain+"/directory")
	problemOf(t, resp, body, http.StatusNotFound)
	resp, body = do(t, http.MethodPost, e.plain+path)
	problemOf(t, resp, body, http.StatusMethodNotAllowed)
}
