package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
)

// --allow-identifier and --deny-identifier come from repeated flags, a
// comma-separated ACMED_ variable or a list in the config file, and make
// the policy acmed serves with.
func TestConfigIdentifierPolicy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("allow-identifier: ['*.apps.internal', '10.0.0.0/8']\ndeny-identifier: admin.apps.internal\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		args         []string
		env          map[string]string
		allow, deny  string
		allowed      []string
		refusedNames []string
	}{
		{"default: all", nil, nil, "", "", []string{"anything.example", "*.example"}, nil},
		{"flags", []string{"--allow-identifier", "*.apps.internal", "--allow-identifier", "**.wild.internal", "--deny-identifier", "admin.apps.internal"}, nil,
			"*.apps.internal,**.wild.internal", "admin.apps.internal", []string{"a.apps.internal", "*.wild.internal"}, []string{"admin.apps.internal", "a.example", "*.apps.internal"}},
		{"environment", nil, map[string]string{"ACMED_ALLOW_IDENTIFIER": "*.apps.internal, 10.0.0.0/8", "ACMED_DENY_IDENTIFIER": "admin.apps.internal,x.apps.internal"},
			"*.apps.internal,10.0.0.0/8", "admin.apps.internal,x.apps.internal", []string{"a.apps.internal"}, []string{"x.apps.internal"}},
		{"file", []string{"--config", file}, nil, "*.apps.internal,10.0.0.0/8", "admin.apps.internal", []string{"a.apps.internal"}, []string{"admin.apps.internal"}},
		{"flag over file", []string{"--config", file, "--deny-identifier", "b.apps.internal"}, nil, "*.apps.internal,10.0.0.0/8", "b.apps.internal",
			[]string{"admin.apps.internal"}, []string{"b.apps.internal"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := loadConfig("serve", tt.args, env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.identifierPolicy()
			if err != nil {
				t.Fatal(err)
			}
			if p.Allow.String() != tt.allow || p.Deny.String() != tt.deny {
				t.Fatalf("allow %q deny %q; want %q and %q", p.Allow, p.Deny, tt.allow, tt.deny)
			}
			check := func(names []string, wantRefused bool) {
				for _, n := range names {
					id, prob := acme.NormalizeIdentifier(acme.Identifier{Type: acme.IdentifierDNS, Value: n})
					if prob != nil {
						t.Fatal(prob)
					}
					if got := p.Check([]acme.Identifier{id}) != nil; got != wantRefused {
						t.Errorf("%s refused %v, want %v", n, got, wantRefused)
					}
				}
			}
			check(tt.allowed, false)
			check(tt.refusedNames, true)
		})
	}
}

func TestConfigIdentifierPolicyErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte("deny-identifier: ['ok.example', 'a.*.example']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--allow-identifier", "*.ok.example", "--allow-identifier", "bad_name.example"}, nil, `--allow-identifier "bad_name.example"`},
		{[]string{"--deny-identifier", "10.0.0.1/8"}, nil, `--deny-identifier "10.0.0.1/8"`},
		{[]string{"--allow-identifier", "*"}, nil, `--allow-identifier "*"`},
		{nil, map[string]string{"ACMED_ALLOW_IDENTIFIER": "ok.example,fe80::1%eth0"}, `--allow-identifier "fe80::1%eth0"`},
		{[]string{"--config", file}, nil, `--deny-identifier "a.*.example"`},
	} {
		_, err := loadConfig("serve", tt.args, env(tt.env))
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("loadConfig(%q, %v) = %v; want a one-line error containing %q", tt.args, tt.env, err, tt.want)
		}
	}
}

// A bad pattern stops the real acmed with exit status 1 and one line
// naming the flag and the pattern.
func TestBadIdentifierPatternRefused(t *testing.T) {
	bin := binary(t)
	data := t.TempDir()
	refused(t, bin, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--deny-identifier", "*.ok.example", "--deny-identifier", "**"},
		`--deny-identifier "**"`, "first label")
}
