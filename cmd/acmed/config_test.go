package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/storage/redis"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("listen: \":1000\"\nhttp01-port: 1001\nresolver: [127.0.0.1:53, \"[::1]:53\"]\ncert-validity: 24h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig("serve", []string{"--config", file, "--http01-port", "2001"},
		env(map[string]string{"ACMED_LISTEN": ":3000", "ACMED_HTTP01_PORT": "3001"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTP01Port != 2001 || c.Listen != ":3000" || c.Resolvers.String() != "127.0.0.1:53,[::1]:53" || c.CertValidity != 24*time.Hour || c.TLSALPN01Port != 443 {
		t.Fatalf("flag > env > file > default not honoured: %+v", c)
	}
	c, err = loadConfig("serve", nil, env(map[string]string{"ACMED_CONFIG": file}))
	if err != nil || c.Listen != ":1000" {
		t.Fatalf("ACMED_CONFIG: %v %+v", err, c)
	}
	c, err = loadConfig("serve", []string{"--resolver", "10.0.0.1:53", "--resolver", "10.0.0.2:53"}, env(map[string]string{"ACMED_RESOLVER": "10.9.9.9:53"}))
	if err != nil || c.Resolvers.String() != "10.0.0.1:53,10.0.0.2:53" {
		t.Fatalf("repeated --resolver: %v %q", err, c.Resolvers)
	}
}

// --store-min-replicas is auto by default; a count, 0 (off) included,
// comes from the flag, the environment or the file like any other.
func TestConfigMinReplicas(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("store-min-replicas: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want int
		show string
	}{
		{nil, nil, redis.AutoReplicas, "auto"},
		{[]string{"--store-min-replicas", "auto"}, nil, redis.AutoReplicas, "auto"},
		{[]string{"--store-min-replicas", "0"}, nil, redis.NoReplicas, "0"},
		{[]string{"--store-min-replicas", "3"}, nil, 3, "3"},
		{nil, map[string]string{"ACMED_STORE_MIN_REPLICAS": "0"}, redis.NoReplicas, "0"},
		{[]string{"--config", file}, nil, 2, "2"},
		{[]string{"--config", file, "--store-min-replicas", "auto"}, nil, redis.AutoReplicas, "auto"},
	} {
		c, err := loadConfig("serve", tt.args, env(tt.env))
		if err != nil {
			t.Fatalf("loadConfig(%q, %v): %v", tt.args, tt.env, err)
		}
		if got := c.MinReplicas.redis(); got != tt.want || c.MinReplicas.String() != tt.show {
			t.Errorf("loadConfig(%q, %v): MinReplicas %d (%s), want %d (%s)", tt.args, tt.env, got, c.MinReplicas.String(), tt.want, tt.show)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	unknown := write("unknown.yaml", "listn: x\n")
	broken := write("broken.yaml", "listen: [\n")
	badValue := write("bad.yaml", "http01-port: eighty\n")
	tests := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--http01-port", "0"}, nil, "--http01-port 0"},
		{[]string{"--http01-port", "x"}, nil, "-http01-port"},
		{[]string{"--cert-validity", "forever"}, nil, "-cert-validity"},
		{[]string{"--no-such-flag"}, nil, "no-such-flag"},
		{[]string{"extra"}, nil, `unexpected argument "extra"`},
		{[]string{"--resolver", "10.0.0.1"}, nil, `--resolver "10.0.0.1"`},
		{[]string{"--validation-blocked-networks", "10.0.0.0/33"}, nil, `--validation-blocked-networks "10.0.0.0/33"`},
		{[]string{"--validation-blocked-networks", "none"}, nil, `--validation-blocked-networks "none"`},
		{[]string{"--validation-allowed-networks", "fd00::/129"}, nil, `--validation-allowed-networks "fd00::/129"`},
		{nil, map[string]string{"ACMED_VALIDATION_ALLOWED_NETWORKS": "x"}, `--validation-allowed-networks "x"`},
		{[]string{"--eab", "sometimes"}, nil, `--eab "sometimes"`},
		{nil, map[string]string{"ACMED_EAB": "yes"}, `--eab "yes"`},
		{[]string{"--validation-https-port", "0"}, nil, "--validation-https-port 0"},
		{[]string{"--validation-https-port", "65536"}, nil, "--validation-https-port 65536"},
		{[]string{"--validation-timeout", "0s"}, nil, "--validation-timeout"},
		{[]string{"--validation-max-per-account", "-1"}, nil, "--validation-max-per-account -1"},
		{[]string{"--validation-max-per-account", "many"}, nil, "-validation-max-per-account"},
		{nil, map[string]string{"ACMED_VALIDATION_MAX_PER_ACCOUNT": "-2"}, "--validation-max-per-account -2"},
		{[]string{"--store-min-replicas", "-1"}, nil, "-store-min-replicas"},
		{[]string{"--store-min-replicas", "all"}, nil, "-store-min-replicas"},
		{nil, map[string]string{"ACMED_STORE_MIN_REPLICAS": "two"}, "ACMED_STORE_MIN_REPLICAS"},
		{nil, map[string]string{"ACMED_TLSALPN01_PORT": "abc"}, "ACMED_TLSALPN01_PORT"},
		{[]string{"--alert-webhook", "ftp://hooks.example/x"}, nil, `--alert-webhook "ftp://hooks.example/…"`},
		{[]string{"--alert-webhook", "hooks.example/x?token=s3cret"}, nil, `--alert-webhook "(unparsable URL)"`},
		{nil, map[string]string{"ACMED_ALERT_WEBHOOK": "https://ok.example/a,nope"}, `--alert-webhook "(unparsable URL)"`},
		{[]string{"--alert-interval", "10ms"}, nil, "--alert-interval 10ms"},
		{[]string{"--alert-campaign-grace", "-1h"}, nil, "--alert-campaign-grace -1h0m0s"},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, nil, "missing.yaml"},
		{[]string{"--config", unknown}, nil, `unknown key "listn"`},
		{[]string{"--config", broken}, nil, "broken.yaml"},
		{[]string{"--config", badValue}, nil, `key "http01-port"`},
	}
	for _, tt := range tests {
		_, err := loadConfig("serve", tt.args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %v; want a one-line error containing %q", tt.args, tt.env, err, tt.want)
		}
	}
}

func TestRunErrors(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	var out bytes.Buffer
	if err := run(ctx, []string{"init", "--data", data}, &out, &out, env(nil)); err != nil {
		t.Fatal(err)
	}
	root, _ := os.ReadFile(filepath.Join(data, "root.pem"))
	if err := run(ctx, []string{"init", "--data", data}, &out, &out, env(nil)); err == nil {
		t.Fatal("second init succeeded")
	}
	if err := run(ctx, []string{"init", "--data", data, "--exist-ok"}, &out, &out, env(nil)); err != nil {
		t.Fatalf("init --exist-ok on an existing CA: %v", err)
	}
	if again, _ := os.ReadFile(filepath.Join(data, "root.pem")); !bytes.Equal(root, again) {
		t.Fatal("second init changed the CA")
	}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"serve", "--data", data, "--listen", "256.0.0.1:1"}, "--listen 256.0.0.1:1"},
		{[]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--external-url", "ftp://x"}, "--external-url"},
		{[]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "loud"}, "--log-level"},
		{[]string{"serve", "--data", data, "--store", "redis://127.0.0.1:1/0"}, "--store redis://127.0.0.1:1/0"},
		{[]string{"serve", "--data", data, "--store", "redis+cluster://"}, "--store"},
		{[]string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--metrics-listen", "256.0.0.1:1"}, "--metrics-listen 256.0.0.1:1"},
	}
	for _, tt := range tests {
		err := run(ctx, tt.args, &out, &out, env(nil))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("run(%q) = %v; want error containing %q", tt.args, err, tt.want)
		}
	}
}

// --validation-max-per-account is 0 (the validator derives it from
// --validation-max-concurrent) unless a flag, variable or file key sets it.
func TestConfigMaxPerAccount(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("validation-max-per-account: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, 0},
		{[]string{"--validation-max-per-account", "2"}, nil, 2},
		{nil, map[string]string{"ACMED_VALIDATION_MAX_PER_ACCOUNT": "3"}, 3},
		{[]string{"--config", file}, nil, 4},
	} {
		c, err := loadConfig("serve", tt.args, env(tt.env))
		if err != nil || c.ValidationMaxPerAccount != tt.want {
			t.Errorf("loadConfig(%q, %v): %v, max per account %d, want %d", tt.args, tt.env, err, c.ValidationMaxPerAccount, tt.want)
		}
	}
}

// The validation network flags come from the flag, the environment or the
// file; the blocked ones add to the built-in ranges, which stay blocked.
func TestConfigValidationNetworks(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("validation-allowed-networks: [169.254.10.0/24]\nvalidation-https-port: 8443\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig("serve", []string{"--config", file, "--validation-blocked-networks", "10.0.0.0/8,192.168.1.7/16"},
		env(map[string]string{"ACMED_VALIDATION_HTTPS_PORT": "9443"}))
	if err != nil {
		t.Fatal(err)
	}
	blocked, _ := c.blockedNetworks()
	allowed, _ := c.allowedNetworks()
	if fmt.Sprint(blocked) != "[10.0.0.0/8 192.168.0.0/16]" || fmt.Sprint(allowed) != "[169.254.10.0/24]" || c.ValidationHTTPSPort != 9443 {
		t.Fatalf("blocked %v, allowed %v, https port %d", blocked, allowed, c.ValidationHTTPSPort)
	}
	c, err = loadConfig("serve", nil, env(nil))
	if err != nil || c.ValidationHTTPSPort != 443 || len(c.ValidationBlocked)+len(c.ValidationAllowed) != 0 {
		t.Fatalf("defaults: %v %+v", err, c)
	}
}
