package authority

import (
	"context"
	"crypto/x509"
	"net"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/ca"
	"github.com/acmed/acmed/storage"
)

// Finalize checks the CSR and queues the order's issuance (§7.4). Only the
// request that moves the order from ready to processing queues it, so an
// order gets one certificate however many finalize calls race; issuance is
// a job (DESIGN.md decision 4), so a replica that dies mid-way leaves it to
// another. The caller waits up to FinalizeWait for the result.
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
	if _, _, p := acme.CertWindow(now, cur.NotBefore, cur.NotAfter, a.cfg.CertValidity); p != nil {
		return nil, p
	}
	if _, err := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
		return acme.BeginFinalize(o, cur.Authzs, csrDER, now)
	}); err != nil {
		return nil, err
	}
	job := storage.Job{OrderID: orderID}
	done := a.waiters.add(job)
	defer a.waiters.remove(job, done)
	if err := a.cfg.Store.Enqueue(ctx, job); err != nil {
		if _, uerr := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
			acme.AbandonFinalize(o)
			return nil
		}); uerr != nil {
			a.log.ErrorContext(ctx, "reset order after failed enqueue", "order", orderID, "err", uerr)
		}
		return nil, err
	}
	_ = a.await(ctx, done, a.cfg.FinalizeWait, func(ctx context.Context) bool {
		o, err := a.cfg.Store.Order(ctx, orderID)
		return err != nil || o.Status != acme.StatusProcessing
	}) // the order is read either way
	// Its authorizations were valid when it was finalized and the order's
	// status no longer depends on them: only the order needs reading again.
	o, err := a.cfg.Store.Order(ctx, orderID)
	if err != nil {
		return nil, err
	}
	return a.view(o, cur.Authzs), nil
}

// issueJob signs a processing order's certificate from the CSR kept with
// it. A redelivered job whose order is no longer processing does nothing.
func (a *Authority) issueJob(ctx context.Context, job storage.Job) {
	log := a.log.With("order", job.OrderID)
	o, err := a.cfg.Store.Order(ctx, job.OrderID)
	if err != nil {
		log.ErrorContext(ctx, "issuance job: load order", "err", err)
		return
	}
	if o.Status != acme.StatusProcessing {
		return
	}
	serial, prob := a.sign(ctx, o)
	if _, err := a.cfg.Store.UpdateOrder(ctx, job.OrderID, func(o *acme.Order) error {
		return acme.FinishFinalize(o, serial, prob)
	}); err != nil {
		log.ErrorContext(ctx, "issuance job: record result", "err", err)
	}
}

// sign issues and stores the certificate of a processing order. Failures
// become the order's error; their cause goes to the log only.
func (a *Authority) sign(ctx context.Context, o *acme.Order) (string, *acme.Problem) {
	csr, err := x509.ParseCertificateRequest(o.CSR)
	if err != nil {
		return "", acme.BadCSR("cannot parse CSR: %v", err)
	}
	notBefore, notAfter, p := acme.CertWindow(a.now(), o.NotBefore, o.NotAfter, a.cfg.CertValidity)
	if p != nil {
		return "", p
	}
	req := ca.Request{PublicKey: csr.PublicKey, CommonName: csr.Subject.CommonName, NotBefore: notBefore, NotAfter: notAfter}
	for _, id := range o.Identifiers {
		if id.Type == acme.IdentifierIP {
			req.IPAddresses = append(req.IPAddresses, net.ParseIP(id.Value))
		} else {
			req.DNSNames = append(req.DNSNames, id.Value)
		}
	}
	issued, err := a.cfg.Signer.Sign(ctx, req)
	if err == nil {
		err = a.cfg.Store.PutCertificate(ctx, &acme.Certificate{
			Serial: issued.Serial, AccountID: o.AccountID, OrderID: o.ID, ChainPEM: issued.ChainPEM,
			Identifiers: o.Identifiers, NotAfter: issued.Leaf.NotAfter,
		})
	}
	if err != nil {
		a.log.ErrorContext(ctx, "issuance failed", "order", o.ID, "err", err)
		return "", acme.ServerInternal("issuance failed")
	}
	a.audit(ctx, "certificate.issue", "account", o.AccountID, "order", o.ID, "serial", issued.Serial,
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
