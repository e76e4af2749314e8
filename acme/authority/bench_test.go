package authority_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
	"github.com/acmed/acmed/acme/metrics"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/challenges"
	"github.com/acmed/acmed/storage/embedded"
)

// benchAuthority is an Authority over the embedded store and the built-in
// CA, with its job worker running, and one account.
func benchAuthority(b *testing.B) (*authority.Authority, *acme.Account, *embedded.Store) {
	return benchAuthorityWith(b, false)
}

// benchAuthorityWith measured is benchAuthority with the metrics on: the
// store measured and the authority's outcomes counted, as
// --metrics-listen has them.
func benchAuthorityWith(b *testing.B, measured bool, tune ...func(*authority.Config)) (*authority.Authority, *acme.Account, *embedded.Store) {
	b.Helper()
	dir := b.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		b.Fatal(err)
	}
	signer, err := ca.Load(dir, ca.Config{})
	if err != nil {
		b.Fatal(err)
	}
	store, err := embedded.Open(filepath.Join(dir, "acmed.db"), embedded.Config{})
	if err != nil {
		b.Fatal(err)
	}
	cfg := authority.Config{
		Store: store, Signer: signer, Validator: challenges.New(challenges.Config{}),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if measured {
		m := metrics.New(metrics.Config{Logger: cfg.Logger})
		cfg.Store, cfg.Metrics = m.InstrumentStore(store), m
	}
	for _, f := range tune {
		f(&cfg)
	}
	a, err := authority.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = a.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done; store.Close() })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	acct, _, err := a.NewAccount(ctx, &jose.JSONWebKey{Key: key.Public()}, authority.NewAccountRequest{})
	if err != nil {
		b.Fatal(err)
	}
	return a, acct, store
}

// BenchmarkNonce is one signed request's nonce work on the embedded store:
// checking the nonce (form, times, MAC under the cached epoch key),
// recording it spent, and issuing its successor.
func BenchmarkNonce(b *testing.B) {
	a, _, _ := benchAuthority(b)
	ctx := context.Background()
	n, err := a.NewNonce(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if n, err = a.ConsumeNonce(ctx, n); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewOrder(b *testing.B)        { benchNewOrder(b, false) }
func BenchmarkNewOrderMetrics(b *testing.B) { benchNewOrder(b, true) }

func benchNewOrder(b *testing.B, measured bool, tune ...func(*authority.Config)) {
	a, acct, _ := benchAuthorityWith(b, measured, tune...)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := a.NewOrder(ctx, acct, authority.NewOrderRequest{
			Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: fmt.Sprintf("h%d.bench.example", i)}},
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFinalize: CSR checks, the ready → processing transition, the
// issuance job and its signature, until the order is valid.
func BenchmarkFinalize(b *testing.B)        { benchFinalize(b, false) }
func BenchmarkFinalizeMetrics(b *testing.B) { benchFinalize(b, true) }

func benchFinalize(b *testing.B, measured bool, tune ...func(*authority.Config)) {
	a, acct, store := benchAuthorityWith(b, measured, tune...)
	ctx := context.Background()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for b.Loop() {
		b.StopTimer()
		name := fmt.Sprintf("f%d.bench.example", time.Now().UnixNano())
		o, err := a.NewOrder(ctx, acct, authority.NewOrderRequest{Identifiers: []acme.Identifier{{Type: acme.IdentifierDNS, Value: name}}})
		if err != nil {
			b.Fatal(err)
		}
		// Validation is measured elsewhere: mark the authorization valid.
		if _, err := store.UpdateAuthorization(ctx, o.AuthzIDs[0], func(az *acme.Authorization) error {
			az.Status, az.Challenges[0].Status = acme.StatusValid, acme.StatusValid
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
		b.StartTimer()
		got, err := a.Finalize(ctx, authority.CallerOf(acct), o.ID, csr)
		if err != nil || got.Status != acme.StatusValid {
			b.Fatalf("finalize: %v %v", err, got)
		}
	}
}
