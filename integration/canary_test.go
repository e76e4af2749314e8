package integration

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/acme"
)

// TestRedirectToInternalCanary: an account's http-01 server redirects the
// validation to an internal page (another loopback address, on the port a
// redirect may use) that holds a secret. The validation fails, and the
// secret is in nothing the account sees (the challenge and authorization
// it reads back) nor in acmed's log.
func TestRedirectToInternalCanary(t *testing.T) {
	const secret = "CANARY-b41e-internal-admin-page"
	l, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	var hits atomic.Int64
	canary := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<html>admin token %s</html>", secret)
	})}
	go canary.Serve(l)
	t.Cleanup(func() { canary.Close() })
	cl, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://127.0.0.3:"+strconv.Itoa(port)+"/admin", http.StatusFound)
	})}
	go client.Serve(cl)
	t.Cleanup(func() { client.Close() })

	s := startAcmed(t, t.TempDir(), "--http01-port", strconv.Itoa(port))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newAccount(t, ctx, s)
	o, err := c.AuthorizeOrder(ctx, []acme.AuthzID{{Type: "ip", Value: "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, chal := challengeOf(t, ctx, c, o.AuthzURLs[0], "http-01")
	if _, err := c.Accept(ctx, chal); err != nil {
		t.Fatal(err)
	}
	_, werr := c.WaitAuthorization(ctx, o.AuthzURLs[0])
	if werr == nil {
		t.Fatal("the authorization became valid")
	}
	seen := []string{werr.Error()}
	// Everything the account can read back.
	z, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetChallenge(ctx, chal.URI)
	if err != nil {
		t.Fatal(err)
	}
	seen = append(seen, fmt.Sprintf("%+v", z), fmt.Sprintf("%+v %+v", got, got.Error))
	for _, ch := range z.Challenges {
		seen = append(seen, fmt.Sprintf("%+v", ch.Error))
	}
	// And raw, as any client would get it: every field, those the acme
	// package does not know included.
	for _, u := range []string{o.AuthzURLs[0], chal.URI} {
		seen = append(seen, postAsGet(t, s, c.Key, string(c.KID), u))
	}
	t.Logf("the account sees: %s", strings.Join(seen, "\n"))
	if hits.Load() == 0 {
		t.Fatal("the canary was never fetched: the test proves nothing")
	}
	for _, text := range append(seen, s.ReadLog()) {
		if strings.Contains(text, secret) {
			t.Fatalf("the canary's secret leaked:\n%s", text)
		}
	}
	if !strings.Contains(seen[0], "text/html") {
		t.Errorf("the problem %q does not describe the response", seen[0])
	}
}

// postAsGet reads u as the account kid (RFC 8555 §6.3) and returns the body.
func postAsGet(t *testing.T, s *server, key crypto.Signer, kid, u string) string {
	t.Helper()
	hc := s.httpClient()
	base := strings.TrimSuffix(s.dir, "/directory")
	resp, err := hc.Head(base + "/acme/new-nonce")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": resp.Header.Get("Replay-Nonce"), "url": u, "kid": kid},
	})
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(nil)
	if err != nil {
		t.Fatal(err)
	}
	// The flattened form, with the empty payload written out: go-jose
	// leaves an empty one out of FullSerialize.
	compact, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(compact, ".")
	flat := fmt.Sprintf(`{"protected":%q,"payload":"","signature":%q}`, parts[0], parts[2])
	resp, err = hc.Post(u, "application/jose+json", strings.NewReader(flat))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST-as-GET %s: %d %s", u, resp.StatusCode, body)
	}
	return string(body)
}
