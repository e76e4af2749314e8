package main

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/profile"
)

// customProfiles is the README's example: a custom profile and a
// replaced built-in.
const customProfiles = `
cert-validity: 72h
default-profile: internal-web
profiles:
  internal-web:
    description: "web servers on the corporate network, ECDSA only, 30 days"
    default_validity: 720h
    backdate: 5m
    ext_key_usages: [serverAuth]
    key_usages: [digitalSignature]
    key_types: [ecdsa-p256, ecdsa-p384]
    max_identifiers: 10
    identifier_types: [dns]
    common_name: first
  shortlived:
    default_validity: 6h
    max_validity: 12h
`

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "acmed.yaml")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestConfigProfiles(t *testing.T) {
	c, err := loadConfig("serve", []string{"--config", writeConfig(t, customProfiles)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	set, err := c.profileSet()
	if err != nil {
		t.Fatal(err)
	}
	if set.Default() != "internal-web" {
		t.Errorf("default %q, want internal-web (default-profile in the file)", set.Default())
	}
	web := set.Get("internal-web")
	want := profile.Profile{
		Name: "internal-web", Description: "web servers on the corporate network, ECDSA only, 30 days",
		DefaultValidity: 720 * time.Hour, MaxValidity: 720 * time.Hour, Backdate: 5 * time.Minute,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		KeyTypes:   []profile.KeyType{profile.ECDSAP256, profile.ECDSAP384},
		RSAMinBits: 2048, RSAMaxBits: 4096, MaxIdentifiers: 10,
		IdentifierTypes: []acme.IdentifierType{acme.IdentifierDNS}, CommonName: profile.CNFirst,
	}
	if web == nil || !equalProfiles(*web, want) {
		t.Errorf("internal-web = %+v\nwant %+v", web, want)
	}
	short := set.Get(profile.ShortLived)
	if short.DefaultValidity != 6*time.Hour || short.MaxValidity != 12*time.Hour || len(short.ExtKeyUsage) != 2 {
		t.Errorf("replaced shortlived = %+v, want 6h..12h with its built-in EKUs", short)
	}
	if mtls := set.Get(profile.MTLS); mtls.DefaultValidity != 72*time.Hour+time.Minute {
		t.Errorf("mtls validity %s, want --cert-validity 72h + the 1m backdate", mtls.DefaultValidity)
	}
	if dir := set.Directory(); len(dir) != 5 || dir["internal-web"] != want.Description {
		t.Errorf("meta.profiles = %v", dir)
	}
}

func equalProfiles(a, b profile.Profile) bool {
	return fmt.Sprintf("%+v", a) == fmt.Sprintf("%+v", b)
}

// TestConfigProfileErrors: each mistake is one line naming the file, the
// profile and the setting.
func TestConfigProfileErrors(t *testing.T) {
	tests := []struct {
		name, body string
		args       []string
		want       string
	}{
		{"unknown setting", "profiles:\n  web:\n    validity: 24h\n", nil, `line 3: profile "web": unknown setting "validity"`},
		{"not a mapping", "profiles: [web]\n", nil, "profiles: want a mapping of profile names to settings"},
		{"profile not a mapping", "profiles:\n  web: 24h\n", nil, `profile "web": want a mapping of settings`},
		{"bad duration", "profiles:\n  web:\n    default_validity: 30d\n", nil, `profile "web": default_validity "30d": want a duration such as 24h`},
		{"bad EKU", "profiles:\n  web:\n    ext_key_usages: [codeSigning]\n", nil, `ext_key_usages: "codeSigning" is not one of serverAuth, clientAuth`},
		{"bad key usage", "profiles:\n  web:\n    key_usages: [keyCertSign]\n", nil, `key_usages: "keyCertSign" is not one of`},
		{"bad key type", "profiles:\n  web:\n    key_types: [dsa]\n", nil, `key_types: "dsa" is not one of`},
		{"max below default", "profiles:\n  web:\n    default_validity: 48h\n    max_validity: 24h\n", nil, "max_validity 24h0m0s: must be at least default_validity 48h0m0s"},
		{"wrong type", "profiles:\n  web:\n    max_identifiers: many\n", nil, "profile \"web\": line 3: cannot unmarshal !!str `many` into int"},
		{"unknown default", "", []string{"--default-profile", "nosuch"}, `--default-profile "nosuch": no such profile`},
		{"spiffe default", "", []string{"--default-profile", "spiffe"}, "cannot be the default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := writeConfig(t, tt.body)
			_, err := loadConfig("serve", append([]string{"--config", file}, tt.args...), env(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("loadConfig = %v, want one line containing %q", err, tt.want)
			}
			if tt.body != "" && !strings.Contains(err.Error(), "config file "+file) {
				t.Fatalf("loadConfig = %v, want it to name the file %s", err, file)
			}
		})
	}
}
