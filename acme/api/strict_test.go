package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage"
	"github.com/acmed/acmed/storage/embedded"
)

// TestPayloadMustBeAnObject: RFC 8555 §7. Wherever a request carries a
// payload, it is a JSON object; null, an array, a string, a number or a
// boolean is malformed (400), never taken for an empty request.
func TestPayloadMustBeAnObject(t *testing.T) {
	v := &scriptedValidator{}
	e := fakeEnv(t, v)
	c := e.newClient()
	c.register()
	o := c.newOrder("a.example")
	var az authz
	c.must(http.StatusOK, o.Authorizations[0], nil, &az)
	kc := e.url("/acme/key-change")
	fresh := e.newClient() // signs with jwk: not registered

	endpoints := []struct {
		name string
		url  string
		by   *client
	}{
		{"new account", e.url("/acme/new-account"), fresh},
		{"account update and deactivation", c.kid, c},
		{"new order", e.url("/acme/new-order"), c},
		{"challenge response", az.Challenges[0].URL, c},
		{"finalize", o.Finalize, c},
		{"authorization deactivation", o.Authorizations[0], c},
		{"revoke", e.url("/acme/revoke-cert"), c},
		{"key change (outer payload)", kc, c},
	}
	for _, ep := range endpoints {
		for _, payload := range []string{`null`, ` null `, `[]`, `[{}]`, `"{}"`, `1`, `-1`, `true`} {
			t.Run(ep.name+" "+payload, func(t *testing.T) {
				problemType(t, ep.by.post(ep.url, []byte(payload), jwsOpts{}), http.StatusBadRequest, "malformed")
			})
		}
	}
	// The key change's inner payload, signed by the new key.
	next := newKey(t)
	for _, payload := range []any{nil, []any{}, "x", 1} {
		t.Run(fmt.Sprintf("key change (inner payload) %v", payload), func(t *testing.T) {
			problemType(t, c.post(kc, innerJWS(t, next, kc, payload, nil, ""), jwsOpts{}), http.StatusBadRequest, "malformed")
		})
	}
	// None of it changed anything: the challenge was never started.
	c.must(http.StatusOK, o.Authorizations[0], nil, &az)
	if az.Status != "pending" || az.Challenges[0].Status != "pending" || v.calls.Load() != 0 {
		t.Fatalf("after refused requests: authorization %s, challenge %s, %d validations", az.Status, az.Challenges[0].Status, v.calls.Load())
	}
}

// TestKeyChangeToTheCurrentKey: §7.3.5 rolls an account over to a new
// key; the key it has already is refused as malformed, saying so, and the
// account keeps working with it.
func TestKeyChangeToTheCurrentKey(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	c.register()
	kc := e.url("/acme/key-change")
	inner := innerJWS(t, c.key, kc, map[string]any{"account": c.kid, "oldKey": jose.JSONWebKey{Key: c.key.Public()}}, nil, "")
	r := c.post(kc, inner, jwsOpts{})
	problemType(t, r, http.StatusBadRequest, "malformed")
	if p := r.problem(t); !strings.Contains(p.Detail, "new key is the account's current key") {
		t.Fatalf("detail %q does not say the new key is the current key", p.Detail)
	}
	c.must(http.StatusOK, c.kid, nil, nil)
}

// hangingStore, once armed, blocks the next account read of a signed
// request until the request's context ends, telling the test (inside)
// once it is there.
type hangingStore struct {
	*embedded.Store
	armed  atomic.Bool
	inside chan struct{}
}

func (s *hangingStore) ConsumeNonceForAccount(ctx context.Context, nonce string, expires time.Time, accountID string, look storage.Lookup) (storage.Found, error) {
	if !s.armed.CompareAndSwap(true, false) {
		return s.Store.ConsumeNonceForAccount(ctx, nonce, expires, accountID, look)
	}
	s.inside <- struct{}{}
	<-ctx.Done()
	return storage.Found{}, ctx.Err()
}

// TestClientHangUpLogsAtDebug: a client that hangs up while sending its
// request, or while acmed works on it, is logged at debug, not as an
// error.
func TestClientHangUpLogsAtDebug(t *testing.T) {
	store, err := embedded.Open(filepath.Join(t.TempDir(), "acmed.db"), embedded.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	hs := &hangingStore{Store: store, inside: make(chan struct{}, 1)}
	logs := &syncBuffer{}
	e := startEnv(t, hs, nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), &scriptedValidator{})
	c := e.newClient()
	c.register()
	addr := strings.TrimPrefix(e.base, "http://")

	waitLog := func(t *testing.T, want string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs.String(), want) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log:\n%s", want, logs)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("while sending the body", func(t *testing.T) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "POST /acme/new-order HTTP/1.1\r\nHost: %s\r\nContent-Type: application/jose+json\r\nContent-Length: 1000\r\n\r\n{\"protected\":", addr)
		conn.Close()
		waitLog(t, "client went away while sending the request", 1)
	})
	t.Run("while acmed works", func(t *testing.T) {
		body := c.sign(e.url("/acme/new-order"), []byte(`{"identifiers":[{"type":"dns","value":"a.example"}]}`), jwsOpts{})
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		hs.armed.Store(true)
		fmt.Fprintf(conn, "POST /acme/new-order HTTP/1.1\r\nHost: %s\r\nContent-Type: application/jose+json\r\nContent-Length: %d\r\n\r\n%s", addr, len(body), body)
		select {
		case <-hs.inside:
		case <-time.After(10 * time.Second):
			t.Fatal("the request never reached the store")
		}
		conn.Close()
		waitLog(t, `msg="client went away"`, 1)
	})
	if strings.Contains(logs.String(), "level=ERROR") {
		t.Fatalf("a client hang-up logged an error:\n%s", logs)
	}
	// The server carries on.
	c.must(http.StatusCreated, e.url("/acme/new-order"), map[string]any{"identifiers": []acme.Identifier{{Type: acme.IdentifierDNS, Value: "b.example"}}}, nil)
}
