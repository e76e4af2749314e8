package integration

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"fmt"

	"golang.org/x/crypto/acme"

	"github.com/acmed/acmed/challenges/challengetest"
)

// issueResilient is one issuance by a client that keeps going through
// replica deaths and store outages: it retries what failed without an ACME
// problem, and after a failed finalize follows the order instead.
func issueResilient(ctx context.Context, c *acme.Client, h *challengetest.HTTP01, name string) ([][]byte, string, error) {
	o, err := retry(ctx, func() (*acme.Order, error) { return c.AuthorizeOrder(ctx, acme.DomainIDs(name)) })
	if err != nil {
		return nil, "", fmt.Errorf("new order: %w", err)
	}
	for _, u := range o.AuthzURLs {
		z, err := retry(ctx, func() (*acme.Authorization, error) { return c.GetAuthorization(ctx, u) })
		if err != nil {
			return nil, "", fmt.Errorf("authorization: %w", err)
		}
		var chal *acme.Challenge
		for _, ch := range z.Challenges {
			if ch.Type == "http-01" {
				chal = ch
			}
		}
		if chal == nil {
			return nil, "", fmt.Errorf("no http-01 challenge for %s", name)
		}
		keyAuth, err := c.HTTP01ChallengeResponse(chal.Token)
		if err != nil {
			return nil, "", err
		}
		h.Set(chal.Token, keyAuth)
		if _, err := retry(ctx, func() (*acme.Challenge, error) { return c.Accept(ctx, chal) }); err != nil {
			return nil, "", fmt.Errorf("accept: %w", err)
		}
		if _, err := retry(ctx, func() (*acme.Authorization, error) { return c.WaitAuthorization(ctx, u) }); err != nil {
			return nil, "", fmt.Errorf("wait authorization: %w", err)
		}
	}
	key := newKeyNoT()
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	if err != nil {
		return nil, "", err
	}
	for attempt := 0; attempt < 10; attempt++ {
		ord, err := retry(ctx, func() (*acme.Order, error) { return c.WaitOrder(ctx, o.URI) })
		if err != nil {
			return nil, "", fmt.Errorf("wait order: %w", err)
		}
		if ord.Status == acme.StatusValid {
			der, err := retry(ctx, func() ([][]byte, error) { return c.FetchCert(ctx, ord.CertURL, true) })
			return der, ord.CertURL, err
		}
		der, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr, true)
		if err == nil {
			return der, certURL, nil
		}
	}
	return nil, "", fmt.Errorf("order %s never became valid", o.URI)
}
