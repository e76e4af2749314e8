// Package softhsmtest gives a test a fresh SoftHSM2 token, as redistest
// gives it a redis-server: the real PKCS#11 module, in a token directory of
// the test's own.
package softhsmtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Module is where Debian's softhsm2 package puts the PKCS#11 module.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token is an initialised token: its label, user PIN and a PIN file
// (mode 0600) holding it.
type Token struct {
	Module  string
	Label   string
	PIN     string
	PINFile string
	Dir     string // the test's directory for the token's files
}

// New initialises a token labelled T (user PIN 1234) in its own token
// directory and points SOFTHSM2_CONF at it for the test, and for the
// processes it starts. It skips when SoftHSM2 is not installed, except
// under CI, where that fails.
func New(t *testing.T) Token {
	t.Helper()
	util, err := exec.LookPath("softhsm2-util")
	if err == nil {
		_, err = os.Stat(Module)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("SoftHSM2 is required under CI: %v", err)
		}
		t.Skipf("SoftHSM2 not installed (apt-get install softhsm2): %v", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	tok := Token{Module: Module, Label: "T", PIN: "1234", Dir: dir, PINFile: filepath.Join(dir, "pin")}
	out, err := exec.Command(util, "--init-token", "--free", "--label", tok.Label, "--pin", tok.PIN, "--so-pin", "5678").CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	if err := os.WriteFile(tok.PINFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return tok
}
