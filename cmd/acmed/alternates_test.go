package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/crosstest"
	"github.com/acmed/acmed/integration/acmedtest"
)

// TestAlternateChainStart: serve starts with a cross-signed bundle of its
// intermediate, given as a flag or as the config file's alternate-chain
// key, and refuses one whose key is not the intermediate's, naming the
// file and what differs, in one line.
func TestAlternateChainStart(t *testing.T) {
	bin := binary(t)
	dir := filepath.Join(t.TempDir(), "data")
	initDir(t, bin, dir)
	inter := crosstest.ReadCert(t, filepath.Join(dir, ca.IntermediateCertFile))
	root := crosstest.NewRoot(t, "Cross Root X1")
	files := t.TempDir()
	good := crosstest.WriteBundle(t, files, "cross.pem", root.CrossSign(t, inter), root.Cert)
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bad := crosstest.WriteBundle(t, files, "other-key.pem", root.Sign(t, crosstest.Template(t, inter), otherKey.Public()), root.Cert)
	config := func(file string) string {
		path := filepath.Join(t.TempDir(), "acmed.yaml")
		if err := os.WriteFile(path, fmt.Appendf(nil, "alternate-chain:\n  - %s\n", file), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	serve := func(more ...string) []string {
		return append([]string{"serve", "--data", dir, "--listen", "127.0.0.1:0"}, more...)
	}

	t.Run("refused: flag", func(t *testing.T) {
		refused(t, bin, serve("--alternate-chain", good, "--alternate-chain", bad), "--alternate-chain "+bad, "has the subject of issuer", "but another public key")
	})
	t.Run("refused: config file", func(t *testing.T) {
		refused(t, bin, serve("--config", config(bad)), "--alternate-chain "+bad, "another public key")
	})
	t.Run("served", func(t *testing.T) {
		p := acmedtest.Start(t, bin, serve("--config", config(good))...)
		if log := p.ReadLog(); !strings.Contains(log, "serving an alternate chain") || !strings.Contains(log, good) {
			t.Errorf("acmed's log does not say it serves %s:\n%s", good, log)
		}
	})
}
