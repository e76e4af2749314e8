package main

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/integration/acmedtest"
)

func TestCRLFlags(t *testing.T) {
	c, err := loadConfig("serve", nil, env(nil))
	if err != nil || c.CRLRefresh != time.Minute || c.CRLValidity != 24*time.Hour || c.CRLBaseURL != "" || c.CRLListen != "" {
		t.Fatalf("defaults: %v, refresh %v, validity %v, base %q, listen %q", err, c.CRLRefresh, c.CRLValidity, c.CRLBaseURL, c.CRLListen)
	}
	for _, tc := range []struct {
		args []string
		want string // "" for accepted
	}{
		{[]string{"--crl-base-url", "http://crl.example.internal:8080"}, ""},
		{[]string{"--crl-base-url", "https://pki.example.com/acmed/"}, ""},
		{[]string{"--crl-base-url", "ftp://crl.example"}, "--crl-base-url"},
		{[]string{"--crl-base-url", "http://"}, "--crl-base-url"},
		{[]string{"--crl-base-url", "http://crl.example/?a=b"}, "--crl-base-url"},
		{[]string{"--crl-base-url", "crl.example"}, "--crl-base-url"},
		{[]string{"--crl-refresh", "500ms"}, "--crl-refresh 500ms"},
		{[]string{"--crl-validity", "30s"}, "--crl-validity 30s"},
		{[]string{"--crl-refresh", "1h", "--crl-validity", "90m"}, "twice --crl-refresh"},
		{[]string{"--crl-refresh", "2s", "--crl-validity", "1m"}, ""},
	} {
		_, err := loadConfig("serve", tc.args, env(nil))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("loadConfig(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestCRLListen: a started acmed serves its CRL, signed by its
// intermediate, on the ACME listener and over plain HTTP on --crl-listen,
// OCSP there too with --ocsp; a --crl-listen it cannot bind stops it
// with one line.
func TestCRLListen(t *testing.T) {
	bin := binary(t)
	dir := filepath.Join(t.TempDir(), "data")
	initDir(t, bin, dir)
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	plain := freeAddr(t)
	p := acmedtest.Start(t, bin, "serve", "--data", dir, "--listen", "127.0.0.1:0",
		"--crl-listen", plain, "--crl-base-url", "http://"+plain, "--ocsp")
	name := ca.CRLName(l.Intermediate())
	roots := x509.NewCertPool()
	roots.AddCert(l.Root())
	https := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	acmeBase := strings.TrimSuffix(p.Directory, "/directory")
	for _, url := range []string{"http://" + plain + "/crl/" + name + ".crl", acmeBase + "/crl/" + name + ".crl"} {
		der := fetchCRL(t, https, url)
		list, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		if err := list.CheckSignatureFrom(l.Intermediate()); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	// With --ocsp the responder is on the plain listener too: a request
	// that is not OCSP is answered malformedRequest (OCSP status 1),
	// never with a problem document.
	resp, err := http.Post("http://"+plain+"/ocsp", "application/ocsp-request", strings.NewReader("not OCSP"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/ocsp-response" ||
		string(body) != "\x30\x03\x0a\x01\x01" {
		t.Fatalf("POST /ocsp on --crl-listen: %d %s %x", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if out := p.ReadLog(); strings.Contains(out, "level=ERROR") {
		t.Errorf("errors logged:\n%s", out)
	}
	refused(t, bin, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--store", filepath.Join(t.TempDir(), "other.db"),
		"--crl-listen", "256.0.0.1:1"}, "--crl-listen 256.0.0.1:1")
}

// fetchCRL polls url until it answers 200 (the first CRL is built just
// after start) and returns the body.
func fetchCRL(t *testing.T, c *http.Client, url string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && resp.Header.Get("Content-Type") == "application/pkix-crl" {
				return body
			}
			err = &httpError{resp.StatusCode, string(body)}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return strconv.Itoa(e.status) + ": " + e.body }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
