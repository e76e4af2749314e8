package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadAdminAuth(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		c    config
		want string // "" for no error
	}{
		{"off", config{}, ""},
		{"token 0600", config{AdminListen: ":0", AdminTokenFile: write("ok", "s3cret-token\n", 0o600)}, ""},
		{"token 0400", config{AdminListen: ":0", AdminTokenFile: write("ro", "s3cret-token", 0o400)}, ""},
		{"token 0644", config{AdminListen: ":0", AdminTokenFile: write("world", "s3cret-token", 0o644)}, "mode 0644 lets group or others read"},
		{"token 0660", config{AdminListen: ":0", AdminTokenFile: write("group", "s3cret-token", 0o660)}, "mode 0660"},
		{"empty token", config{AdminListen: ":0", AdminTokenFile: write("empty", "\n", 0o600)}, "empty"},
		{"missing token file", config{AdminListen: ":0", AdminTokenFile: filepath.Join(dir, "nope")}, "--admin-token-file"},
		{"client CA not PEM", config{AdminListen: ":0", AdminClientCA: write("ca.pem", "junk", 0o644)}, "--admin-client-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadAdminAuth(tc.c)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n")):
				t.Fatalf("error %v; want one line with %q", err, tc.want)
			}
		})
	}
}

func TestAdminListenNeedsAuthentication(t *testing.T) {
	env := func(string) string { return "" }
	_, err := loadConfig("serve", []string{"--admin-listen", "127.0.0.1:0"}, env)
	if err == nil || !strings.Contains(err.Error(), "--admin-listen") {
		t.Fatalf("--admin-listen alone: %v; want an error naming it", err)
	}
	c, err := loadConfig("serve", nil, func(k string) string {
		return map[string]string{"ACMED_ADMIN_LISTEN": "127.0.0.1:0", "ACMED_ADMIN_TOKEN_FILE": "/t"}[k]
	})
	if err != nil || c.AdminListen != "127.0.0.1:0" || c.AdminTokenFile != "/t" {
		t.Fatalf("from the environment: %+v, %v", c, err)
	}
}
