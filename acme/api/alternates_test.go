package api_test

import (
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme/api"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/ca/crosstest"
	"github.com/acmed/acmed/storage/embedded"
)

// altEnv is an env whose intermediate is cross-signed by each of roots,
// served as alternate chains in that order; no roots: none configured.
func altEnv(t *testing.T, roots ...*crosstest.Root) (e *env, acmedRoot *x509.Certificate) {
	t.Helper()
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e = startEnvAPI(t, store, nil, nil, func(*authority.Config) {}, func(l *ca.Local, c *api.Config) {
		acmedRoot = l.Root()
		dir := t.TempDir()
		var files []string
		for i, r := range roots {
			files = append(files, crosstest.WriteBundle(t, dir, r.Cert.Subject.CommonName+".pem", r.CrossSign(t, l.Intermediate()), roots[i].Cert))
		}
		alts, err := ca.LoadAlternates(files, []*x509.Certificate{l.Intermediate()}, ca.Config{})
		if err != nil {
			t.Fatal(err)
		}
		c.Alternates = alts
	})
	e.store = store
	return e, acmedRoot
}

func alternateLinks(r *response) []string {
	var out []string
	for _, l := range r.header.Values("Link") {
		if u, ok := strings.CutSuffix(l, `>;rel="alternate"`); ok {
			out = append(out, strings.TrimPrefix(u, "<"))
		}
	}
	return out
}

func chainOf(t *testing.T, body []byte) []*x509.Certificate {
	t.Helper()
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		block, body = pem.Decode(body)
		if block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

// TestAlternateChains: with two cross-signing roots configured, the
// certificate URL serves the default chain and links /1 and /2, each of
// which serves the leaf with a cross-signed chain and links the others;
// any other index is a 404 problem, another account's certificate stays
// refused, and without alternates configured nothing is linked.
func TestAlternateChains(t *testing.T) {
	x1, x2 := crosstest.NewRoot(t, "Cross Root X1"), crosstest.NewRoot(t, "Cross Root X2")
	e, acmedRoot := altEnv(t, x1, x2)
	c := e.newClient()
	c.register()
	o, _ := c.issue(nil, "alt.example")
	u := o.Certificate
	stranger := e.newClient()
	stranger.register()

	tests := []struct {
		name   string
		c      *client
		url    string
		status int
		typ    string            // problem type when status is not 200
		root   *x509.Certificate // the served chain verifies to it
		links  []string          // alternate links, in order
		length int               // certificates served
	}{
		{name: "default", c: c, url: u, status: 200, root: acmedRoot, links: []string{u + "/1", u + "/2"}, length: 2},
		{name: "alternate 1", c: c, url: u + "/1", status: 200, root: x1.Cert, links: []string{u, u + "/2"}, length: 3},
		{name: "alternate 2", c: c, url: u + "/2", status: 200, root: x2.Cert, links: []string{u, u + "/1"}, length: 3},
		{name: "unknown index", c: c, url: u + "/3", status: 404, typ: "malformed"},
		{name: "index 0", c: c, url: u + "/0", status: 404, typ: "malformed"},
		{name: "not canonical", c: c, url: u + "/01", status: 404, typ: "malformed"},
		{name: "not a number", c: c, url: u + "/x", status: 404, typ: "malformed"},
		{name: "unknown certificate", c: c, url: e.url("/acme/cert/0abc/1"), status: 404, typ: "malformed"},
		{name: "another account's", c: stranger, url: u + "/1", status: 403, typ: "unauthorized"},
	}
	var leaf *x509.Certificate
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.c.post(tt.url, nil, jwsOpts{})
			if tt.status != 200 {
				problemType(t, r, tt.status, tt.typ)
				if l := alternateLinks(r); len(l) != 0 {
					t.Errorf("a refusal links %v", l)
				}
				return
			}
			if r.status != 200 || r.header.Get("Content-Type") != "application/pem-certificate-chain" || r.header.Get("Replay-Nonce") == "" {
				t.Fatalf("status %d, Content-Type %q, nonce %q: %s", r.status, r.header.Get("Content-Type"), r.header.Get("Replay-Nonce"), r.body)
			}
			if got := alternateLinks(r); !slices.Equal(got, tt.links) {
				t.Errorf("alternate links %v, want %v", got, tt.links)
			}
			chain := chainOf(t, r.body)
			if len(chain) != tt.length {
				t.Fatalf("%d certificates, want %d", len(chain), tt.length)
			}
			if leaf == nil {
				leaf = chain[0]
			} else if !leaf.Equal(chain[0]) {
				t.Fatal("another leaf than the default chain's")
			}
			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			roots.AddCert(tt.root)
			for _, c := range chain[1:] {
				inters.AddCert(c)
			}
			if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters}); err != nil {
				t.Errorf("chain does not verify to %s: %v", tt.root.Subject, err)
			}
			if top := chain[len(chain)-1]; top.Issuer.CommonName != tt.root.Subject.CommonName {
				t.Errorf("topmost certificate's issuer %q, want %q (lego --preferred-chain matches it)", top.Issuer.CommonName, tt.root.Subject.CommonName)
			}
		})
	}

	t.Run("none configured", func(t *testing.T) {
		e, _ := altEnv(t)
		c := e.newClient()
		c.register()
		o, _ := c.issue(nil, "plain.example")
		u := o.Certificate
		r := c.must(200, u, nil, nil)
		if l := alternateLinks(r); len(l) != 0 {
			t.Errorf("alternate links %v with none configured", l)
		}
		problemType(t, c.post(u+"/1", nil, jwsOpts{}), 404, "malformed")
	})
}
