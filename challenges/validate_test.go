package challenges

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

func TestValidateRejects(t *testing.T) {
	// No network is reached: a resolver that fails the test if asked.
	v := New(Config{Resolver: failResolver{t}, HTTPPort: closedPort(t)})
	dnsID := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierDNS, Value: v} }
	ipID := func(v string) acme.Identifier { return acme.Identifier{Type: acme.IdentifierIP, Value: v} }
	tests := []struct {
		name    string
		typ     acme.ChallengeType
		id      acme.Identifier
		token   string
		wantErr *acme.Problem
		want    []string
	}{
		{"unknown type", "http-02", dnsID("v4.example.test"), testToken, acme.ErrMalformed, []string{"http-02"}},
		{"unknown identifier type", acme.ChallengeHTTP01, acme.Identifier{Type: "email", Value: "a@example.test"}, testToken, acme.ErrUnsupportedIdentifier, []string{"email"}},
		{"dns-01 for an IP address", acme.ChallengeDNS01, ipID("127.0.0.1"), testToken, acme.ErrMalformed, []string{"dns-01 cannot validate an IP address"}},
		{"dns-01 for a bad name", acme.ChallengeDNS01, dnsID("a..example.test"), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"tls-alpn-01 for a wildcard", acme.ChallengeTLSALPN01, dnsID("*.example.test"), testToken, acme.ErrMalformed, []string{"wildcard", "dns-01"}},
		{"tls-alpn-01 for a bad name", acme.ChallengeTLSALPN01, dnsID("evil@example.test"), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"tls-alpn-01 for a bad IP", acme.ChallengeTLSALPN01, ipID("127.0.0.300"), testToken, acme.ErrMalformed, []string{"not an IP address"}},
		{"IP identifier that is a name", acme.ChallengeHTTP01, ipID("example.test"), testToken, acme.ErrMalformed, []string{"not an IP address"}},
		{"IP identifier with a zone", acme.ChallengeHTTP01, ipID("fe80::1%lo"), testToken, acme.ErrMalformed, []string{"not an IP address"}},
		{"wildcard", acme.ChallengeHTTP01, dnsID("*.example.test"), testToken, acme.ErrMalformed, []string{"wildcard"}},
		{"IP literal as DNS name", acme.ChallengeHTTP01, dnsID("127.0.0.1"), testToken, acme.ErrMalformed, []string{"IP address"}},
		{"name with a port", acme.ChallengeHTTP01, dnsID("example.test:8080"), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"name with userinfo", acme.ChallengeHTTP01, dnsID("evil@example.test"), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"empty label", acme.ChallengeHTTP01, dnsID("a..example.test"), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"empty name", acme.ChallengeHTTP01, dnsID(""), testToken, acme.ErrMalformed, []string{"not a valid DNS name"}},
		{"token with a slash", acme.ChallengeHTTP01, dnsID("v4.example.test"), "../../etc", acme.ErrMalformed, []string{"token"}},
		{"empty token", acme.ChallengeHTTP01, dnsID("v4.example.test"), "", acme.ErrMalformed, []string{"token"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validateErr(v, t.Context(), tc.typ, tc.id, tc.token, testKeyAuth)
			checkProblem(t, err, tc.wantErr, tc.id, tc.want, nil)
		})
	}
}

func TestValidateCanceled(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	ctx, cancel := context.WithCancel(t.Context())
	// Cancel once the validator is waiting on the server: the request
	// reaching the handler is the signal, not a sleep.
	arrived := make(chan struct{}, 1)
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	}))
	v := New(Config{Resolver: res, HTTPPort: port})
	go func() {
		<-arrived
		cancel()
	}()
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
	err := validateErr(v, ctx, acme.ChallengeHTTP01, id, testToken, testKeyAuth)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Validate = %v, want context.Canceled", err)
	}
	var p *acme.Problem
	if errors.As(err, &p) {
		t.Errorf("Validate = problem %v; a canceled validation must not fail the challenge", p)
	}
}

func TestValidateParentDeadline(t *testing.T) {
	res := NewResolver(startDNS(t, &testZone{}))
	port := serve(t, hang(t, false))
	v := New(Config{Resolver: res, HTTPPort: port}) // default 10s timeout
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	t.Cleanup(cancel)
	id := acme.Identifier{Type: acme.IdentifierDNS, Value: "v4.example.test"}
	err := validateErr(v, ctx, acme.ChallengeHTTP01, id, testToken, testKeyAuth)
	checkProblem(t, err, acme.ErrConnection, id, []string{"timeout"}, nil)
}
