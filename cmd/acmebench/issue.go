package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"

	"golang.org/x/crypto/acme"
)

// issue obtains one certificate for name: new order, authorization,
// challenge response, finalize, download, check. Every step fails the
// issuance; nothing is retried beyond what the acme package retries.
func (w *worker) issue(ctx context.Context, name string, r *responders) error {
	o, err := w.client.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return fmt.Errorf("new-order: %w", err)
	}
	if len(o.AuthzURLs) != 1 {
		return fmt.Errorf("new-order: %d authorizations for one name", len(o.AuthzURLs))
	}
	if err := w.authorize(ctx, o.AuthzURLs[0], name, r); err != nil {
		return err
	}

	key, csr, err := newCSR(name)
	if err != nil {
		return fmt.Errorf("csr: %w", err)
	}
	fo, err := w.finalize(ctx, o.FinalizeURL, csr)
	if err != nil {
		return fmt.Errorf("finalize: %w", err)
	}
	status, certURL, prob := fo.Status, fo.Certificate, error(nil)
	if fo.Error != nil {
		prob = fo.Error
	}
	if status != acme.StatusValid && status != acme.StatusInvalid {
		po, err := poll(ctx, w.poll, func(ctx context.Context) (*acme.Order, error) {
			return w.client.GetOrder(ctx, o.URI)
		}, func(o *acme.Order) bool {
			return o.Status == acme.StatusValid || o.Status == acme.StatusInvalid
		})
		if err != nil {
			return fmt.Errorf("order after finalize: %w", err)
		}
		status, certURL = po.Status, po.CertURL
		if po.Error != nil {
			prob = po.Error
		}
	}
	if status != acme.StatusValid {
		return fmt.Errorf("order %s: %v", status, prob)
	}
	if certURL == "" {
		return errors.New("order valid without a certificate URL")
	}
	der, err := w.client.FetchCert(ctx, certURL, true)
	if err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if err := checkChain(der, name, key); err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	return nil
}

// authorize completes the order's authorization with the chosen challenge.
func (w *worker) authorize(ctx context.Context, url, name string, r *responders) error {
	z, err := w.client.GetAuthorization(ctx, url)
	if err != nil {
		return fmt.Errorf("authorization: %w", err)
	}
	switch z.Status {
	case acme.StatusValid:
		return nil // reused; names are unique per run, so unexpected but fine
	case acme.StatusPending:
	default:
		return fmt.Errorf("authorization is %s before any response", z.Status)
	}
	var chal *acme.Challenge
	for _, c := range z.Challenges {
		if c.Type == r.challenge {
			chal = c
		}
	}
	if chal == nil {
		return fmt.Errorf("authorization offers no %s challenge", r.challenge)
	}
	withdraw, err := r.publish(w.client, name, chal)
	if err != nil {
		return fmt.Errorf("publish %s: %w", r.challenge, err)
	}
	defer withdraw()

	ch, err := w.client.Accept(ctx, chal)
	if err != nil {
		return fmt.Errorf("challenge response: %w", err)
	}
	// The server may finish a fast validation before answering; then
	// there is nothing to poll.
	switch ch.Status {
	case acme.StatusValid:
		return nil
	case acme.StatusInvalid:
		return fmt.Errorf("challenge invalid: %v", ch.Error)
	}
	z, err = poll(ctx, w.poll, func(ctx context.Context) (*acme.Authorization, error) {
		return w.client.GetAuthorization(ctx, url)
	}, func(z *acme.Authorization) bool { return z.Status != acme.StatusPending })
	if err != nil {
		return fmt.Errorf("authorization after response: %w", err)
	}
	if z.Status != acme.StatusValid {
		for _, c := range z.Challenges {
			if c.Error != nil {
				return fmt.Errorf("authorization %s: %v", z.Status, c.Error)
			}
		}
		return fmt.Errorf("authorization %s", z.Status)
	}
	return nil
}

// newCSR makes a fresh P-256 key, as a client does per certificate, and a
// CSR for name signed with it.
func newCSR(name string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	return key, csr, err
}
