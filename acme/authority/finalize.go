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
// request that moves the order from ready to processing queues it, in the
// same write, claimed by this replica, which runs it at once; so an order
// gets one certificate however many finalize calls race. Issuance is a job
// (DESIGN.md decision 4): a replica that dies mid-way leaves it to another.
// The caller waits up to FinalizeWait for the result.
func (a *Authority) Finalize(ctx context.Context, c *Caller, orderID string, csrDER []byte) (*Order, error) {
	stored, authzs, err := a.ownOrder(ctx, c, orderID)
	if err != nil {
		return nil, err
	}
	now := a.now()
	if st := acme.OrderStatus(stored, authzs, now); st != acme.StatusReady {
		return nil, acme.OrderNotReady("order is %s, not ready", st)
	}
	// As at new-order time: a key revoked or narrowed since stops it too.
	bound, err := a.accountKey(ctx, c.Account)
	if err != nil {
		return nil, err
	}
	if err := a.checkIdentifiers(ctx, "finalize", c.Account, stored.Identifiers, bound.patterns()...); err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, acme.BadCSR("cannot parse CSR: %v", err)
	}
	if p := acme.CheckCSR(csr, stored.Identifiers, c.Account.KeyThumbprint); p != nil {
		return nil, p
	}
	validity := bound.validity(a.cfg.CertValidity)
	_, notAfter, p := acme.CertWindow(now, stored.NotBefore, stored.NotAfter, validity)
	if p != nil {
		return nil, p
	}
	var claim storage.Claim
	o, err := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
		if validity < a.cfg.CertValidity && o.NotAfter.IsZero() {
			// The key's --max-validity is shorter than the server's: the
			// window is fixed now, so that issuance, which knows nothing
			// of keys, keeps to it.
			o.NotAfter = notAfter
		}
		return acme.BeginFinalize(o, authzs, csrDER, now)
	}, storage.From(stored), storage.Queue(storage.Job{OrderID: orderID}, &claim))
	if err != nil {
		return nil, notFound(err, "order")
	}
	// The authorizations were valid when the order was finalized, and the
	// order's status no longer depends on them.
	if done, ok := runJob(ctx, a, a.cfg.FinalizeWait, func(ctx context.Context) *acme.Order {
		return a.issue(ctx, claim, o)
	}); ok {
		o = done
	}
	return a.view(o, authzs), nil
}

// issue signs the certificate of o, a processing order as stored, from the
// CSR kept with it, and records it with the order in one write. It returns
// the order as written, or nil if the result could not be recorded. A
// job whose order is no longer processing does nothing.
func (a *Authority) issue(ctx context.Context, claim storage.Claim, o *acme.Order) *acme.Order {
	log := a.log.With("order", o.ID)
	if o.Status != acme.StatusProcessing {
		a.finish(ctx, claim)
		return o
	}
	cert, prob := a.sign(ctx, o)
	opts := []storage.Option{storage.From(o), storage.Finishing(claim)}
	serial := ""
	if cert != nil {
		opts, serial = append(opts, storage.WithCertificate(cert)), cert.Serial
		// Counted with the write that records the certificate: in its
		// script on one Redis server; on a Cluster the name set's slot
		// takes one more step.
		opts = append(opts, a.spending(a.now(), a.certificatesLimit(o.Identifiers, 1))...)
	}
	out, err := a.cfg.Store.UpdateOrder(ctx, o.ID, func(o *acme.Order) error {
		return acme.FinishFinalize(o, serial, prob)
	}, opts...)
	switch {
	case isProblem(err):
		a.finish(ctx, claim) // another worker finished the order first
		return nil
	case err != nil:
		log.ErrorContext(ctx, "issuance job: record result", "err", err)
		return nil
	}
	if cert != nil {
		a.audit(ctx, "certificate.issue", "account", o.AccountID, "order", o.ID, "serial", cert.Serial,
			"identifiers", cert.Identifiers, "not_after", cert.NotAfter)
	}
	return out
}

// sign issues the certificate of a processing order. Failures become the
// order's error; their cause goes to the log only.
func (a *Authority) sign(ctx context.Context, o *acme.Order) (*acme.Certificate, *acme.Problem) {
	csr, err := x509.ParseCertificateRequest(o.CSR)
	if err != nil {
		return nil, acme.BadCSR("cannot parse CSR: %v", err)
	}
	notBefore, notAfter, p := acme.CertWindow(a.now(), o.NotBefore, o.NotAfter, a.cfg.CertValidity)
	if p != nil {
		return nil, p
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
	if err != nil {
		a.log.ErrorContext(ctx, "issuance failed", "order", o.ID, "err", err)
		return nil, acme.ServerInternal("issuance failed")
	}
	return &acme.Certificate{
		Serial: issued.Serial, AccountID: o.AccountID, OrderID: o.ID, ChainPEM: issued.ChainPEM,
		Identifiers: o.Identifiers, NotAfter: issued.Leaf.NotAfter,
	}, nil
}

// Certificate returns the PEM chain of one of the account's certificates.
func (a *Authority) Certificate(ctx context.Context, c *Caller, serial string) (*acme.Certificate, error) {
	cert, err := a.loadCertificate(ctx, c, serial)
	if err != nil {
		return nil, notFound(err, "certificate")
	}
	if cert.AccountID != c.Account.ID {
		return nil, acme.Unauthorized("certificate belongs to another account")
	}
	return cert, nil
}
