package main

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestConfigOCSP(t *testing.T) {
	refused := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--ocsp-base-url", "http://ocsp.example"}, nil, "--ocsp-base-url: needs --ocsp"},
		{nil, map[string]string{"ACMED_OCSP_DELEGATED": "true"}, "--ocsp-delegated: needs --ocsp"},
		{[]string{"--ocsp", "--ocsp-base-url", "ocsp.example"}, nil, `--ocsp-base-url "ocsp.example"`},
		{[]string{"--ocsp", "--ocsp-base-url", "http://ocsp.example/ocsp"}, nil, `--ocsp-base-url "http://ocsp.example/ocsp"`},
		{[]string{"--ocsp", "--ocsp-base-url", "ldap://ocsp.example"}, nil, `--ocsp-base-url "ldap://ocsp.example"`},
		{[]string{"--ocsp", "--ocsp-validity", "30s"}, nil, "--ocsp-validity 30s"},
		{[]string{"--ocsp", "--ocsp-delegated", "--ocsp-validity", "2m"}, nil, "--ocsp-validity 2m0s: must be at least 5m with --ocsp-delegated"},
	}
	for _, tt := range refused {
		_, err := loadConfig("serve", tt.args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %v; want a one-line error containing %q", tt.args, tt.env, err, tt.want)
		}
	}

	external := &url.URL{Scheme: "https", Host: "acme.example:14000"}
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--ocsp"}, []string{"https://acme.example:14000/ocsp"}},
		{[]string{"--ocsp", "--ocsp-base-url", "http://ocsp.example/"}, []string{"http://ocsp.example/ocsp"}},
		{[]string{"--ocsp", "--ocsp-base-url", "http://127.0.0.1:8080"}, []string{"http://127.0.0.1:8080/ocsp"}},
	} {
		c, err := loadConfig("serve", tt.args, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := ocspServer(c, external); !slices.Equal(got, tt.want) {
			t.Errorf("%q: certificates carry OCSP URL %q, want %q", tt.args, got, tt.want)
		}
		if c.OCSPValidity != 4*time.Hour {
			t.Errorf("--ocsp-validity default %s, want 4h", c.OCSPValidity)
		}
	}
}
