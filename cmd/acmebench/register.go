package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/acme"
)

// Retries of the acme package's requests (bad nonce, 429, 5xx). Its
// default backoff waits seconds, which would measure the client's sleep
// rather than the server; every retry is still counted as a request.
const (
	maxRetries    = 3
	maxRetryDelay = time.Second
)

// worker is one account and what its issuances share.
type worker struct {
	client  *acme.Client
	hc      *http.Client
	key     *ecdsa.PrivateKey
	kid     string // the account URL
	nonceAt string // the server's new-nonce URL
	nonce   string // one unused nonce for finalize, see finalize.go
	poll    time.Duration
}

// registerAll creates one account per worker, all at once, before the
// timed part of the run.
func registerAll(ctx context.Context, cfg *config, hc *http.Client) ([]*worker, error) {
	workers := make([]*worker, cfg.c)
	errs := make([]error, cfg.c)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() {
			workers[i], errs[i] = register(ctx, cfg, hc)
		})
	}
	wg.Wait()
	// The first error is enough: the others almost always say the same.
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("register account: %s", oneLine(err))
		}
	}
	return workers, nil
}

func register(ctx context.Context, cfg *config, hc *http.Client) (*worker, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	w := &worker{hc: hc, key: key, poll: cfg.poll}
	w.client = &acme.Client{
		Key:          key,
		HTTPClient:   hc,
		DirectoryURL: cfg.dir,
		UserAgent:    "acmebench",
		RetryBackoff: func(n int, _ *http.Request, _ *http.Response) time.Duration {
			if n > maxRetries {
				return 0
			}
			return min(cfg.poll<<(n-1), maxRetryDelay)
		},
	}
	dir, err := w.client.Discover(ctx)
	if err != nil {
		return nil, err
	}
	w.nonceAt = dir.NonceURL
	acct, err := w.client.Register(ctx, &acme.Account{}, acme.AcceptTOS)
	if err != nil {
		return nil, err
	}
	w.kid = acct.URI
	// The first nonce for finalize is fetched here, untimed; afterwards
	// each finalize response brings the next.
	if w.nonce, err = w.fetchNonce(ctx); err != nil {
		return nil, err
	}
	return w, nil
}
