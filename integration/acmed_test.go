// Package integration drives a real acmed process over real HTTPS with real
// ACME clients, DNS and challenge responders on loopback.
package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/integration/acmedtest"
)

// acmedBinary is built once per test run by TestMain.
var acmedBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "acmed-bin-")
	if err != nil {
		panic(err)
	}
	acmedBinary, err = acmedtest.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running acmed process.
type server struct {
	*acmedtest.Process
	dir  string // the directory URL
	data string
	log  string // the process's stderr
	root *x509.CertPool
	cmd  *exec.Cmd
}

// startAcmed runs acmed with args and waits for its ready message. The
// process is stopped by PID when the test ends.
func startAcmed(t testing.TB, data string, args ...string) *server {
	t.Helper()
	args = append([]string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, args...)
	p := acmedtest.Start(t, acmedBinary, args...)
	s := &server{Process: p, dir: p.Directory, data: data, log: p.Log, cmd: p.Cmd}
	rootPEM, err := os.ReadFile(filepath.Join(data, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	s.root = x509.NewCertPool()
	if !s.root.AppendCertsFromPEM(rootPEM) {
		t.Fatal("root.pem holds no certificate")
	}
	return s
}

// httpClient trusts only acmed's root: no InsecureSkipVerify anywhere.
func (s *server) httpClient() *http.Client {
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.root}},
	}
}

// newAccount returns a client of s with an account of its own.
func newAccount(t testing.TB, ctx context.Context, s *server) *acme.Client {
	t.Helper()
	c := &acme.Client{Key: newKey(t), DirectoryURL: s.dir, HTTPClient: s.httpClient()}
	if _, err := c.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	return c
}

// challengeOf reads the authorization at authzURL and returns it with its
// challenge of type typ.
func challengeOf(t testing.TB, ctx context.Context, c *acme.Client, authzURL, typ string) (*acme.Authorization, *acme.Challenge) {
	t.Helper()
	z, err := c.GetAuthorization(ctx, authzURL)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range z.Challenges {
		if ch.Type == typ {
			return z, ch
		}
	}
	t.Fatalf("authorization for %s offers no %s", z.Identifier.Value, typ)
	return nil, nil
}
