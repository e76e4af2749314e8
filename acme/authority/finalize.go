package authority

import (
	"context"
	"crypto/x509"
	"net"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
)

// Finalize checks the CSR and issues the order's certificate (§7.4). Only
// the request that moves the order from ready to processing signs, so an
// order gets exactly one certificate however many finalize calls race.
func (a *Authority) Finalize(ctx context.Context, acct *acme.Account, orderID string, csrDER []byte) (*Order, error) {
	cur, err := a.Order(ctx, acct, orderID)
	if err != nil {
		return nil, err
	}
	if cur.Status != acme.StatusReady {
		return nil, acme.OrderNotReady("order is %s, not ready", cur.Status)
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, acme.BadCSR("cannot parse CSR: %v", err)
	}
	if p := acme.CheckCSR(csr, cur.Identifiers, acct.KeyThumbprint); p != nil {
		return nil, p
	}
	now := a.now()
	notBefore, notAfter, p := acme.CertWindow(now, cur.NotBefore, cur.NotAfter, a.cfg.CertValidity)
	if p != nil {
		return nil, p
	}
	if _, err := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
		return acme.BeginFinalize(o, cur.Authzs, now)
	}); err != nil {
		return nil, err
	}

	req := ca.Request{PublicKey: csr.PublicKey, CommonName: csr.Subject.CommonName, NotBefore: notBefore, NotAfter: notAfter}
	for _, id := range cur.Identifiers {
		if id.Type == acme.IdentifierIP {
			req.IPAddresses = append(req.IPAddresses, net.ParseIP(id.Value))
		} else {
			req.DNSNames = append(req.DNSNames, id.Value)
		}
	}
	serial, signErr := a.issue(ctx, acct, cur.Order, req)
	var prob *acme.Problem
	if signErr != nil {
		a.log.ErrorContext(ctx, "issuance failed", "order", orderID, "err", signErr)
		prob = acme.ServerInternal("issuance failed")
	}
	o, err := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
		return acme.FinishFinalize(o, serial, prob)
	})
	if err != nil {
		return nil, err
	}
	if prob != nil {
		return nil, prob
	}
	return a.view(o, cur.Authzs), nil
}

func (a *Authority) issue(ctx context.Context, acct *acme.Account, o *acme.Order, req ca.Request) (string, error) {
	issued, err := a.cfg.Signer.Sign(ctx, req)
	if err != nil {
		return "", err
	}
	cert := &acme.Certificate{
		Serial: issued.Serial, AccountID: acct.ID, OrderID: o.ID, ChainPEM: issued.ChainPEM,
		Identifiers: o.Identifiers, NotAfter: issued.Leaf.NotAfter,
	}
	if err := a.cfg.Store.PutCertificate(ctx, cert); err != nil {
		return "", err
	}
	a.audit(ctx, "certificate.issue", "account", acct.ID, "order", o.ID, "serial", issued.Serial,
		"names", req.DNSNames, "ips", req.IPAddresses, "not_before", issued.Leaf.NotBefore, "not_after", issued.Leaf.NotAfter)
	return issued.Serial, nil
}

// Certificate returns the PEM chain of one of the account's certificates.
func (a *Authority) Certificate(ctx context.Context, acct *acme.Account, serial string) (*acme.Certificate, error) {
	c, err := a.cfg.Store.Certificate(ctx, serial)
	if err != nil {
		return nil, notFound(err, "certificate")
	}
	if c.AccountID != acct.ID {
		return nil, acme.Unauthorized("certificate belongs to another account")
	}
	return c, nil
}
