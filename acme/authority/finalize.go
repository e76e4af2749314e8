package authority

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/profile"
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
	prof := a.profileOf(stored)
	if prof == nil {
		return nil, acme.InvalidProfile("the order's profile %q is no longer offered; create a new order", stored.Profile)
	}
	spiffeID := ""
	if prof.SPIFFE {
		if bound.key == nil || bound.key.SPIFFEID == "" {
			return nil, acme.InvalidProfile("profile %q issues SPIFFE IDs, and this account's external account binding key carries none", prof.Name)
		}
		spiffeID = bound.key.SPIFFEID
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, acme.BadCSR("cannot parse CSR: %v", err)
	}
	if p := acme.CheckCSR(csr, stored.Identifiers, c.Account.KeyThumbprint); p != nil {
		return nil, p
	}
	if v, ok := a.cfg.Signer.(csrVetter); ok {
		if err := v.CheckCSR(csr); err != nil {
			return nil, acme.BadCSR("%v", err)
		}
	}
	if p := prof.CheckKey(csr.PublicKey); p != nil {
		return nil, p
	}
	if err := a.checkKeyNotBlocked(ctx, c, csr.RawSubjectPublicKeyInfo); err != nil {
		return nil, err
	}
	if p := prof.CheckURIs(csr.URIs, spiffeID); p != nil {
		return nil, p
	}
	limit := bound.limit(prof)
	_, notAfter, p := prof.Window(now, stored.NotBefore, stored.NotAfter, limit)
	if p != nil {
		return nil, p
	}
	var claim storage.Claim
	o, err := a.cfg.Store.UpdateOrder(ctx, orderID, func(o *acme.Order) error {
		if limit < prof.MaxValidity && o.NotAfter.IsZero() {
			// The key's --max-validity is shorter than the profile's:
			// the window is fixed now, so that issuance, which knows
			// nothing of keys, keeps to it.
			o.NotAfter = notAfter
		}
		o.SPIFFEID = spiffeID
		if bound.key != nil {
			// For the certificate's inventory entry: issuance reads
			// no key.
			o.EABKeyName = bound.key.Name
		}
		return acme.BeginFinalize(o, authzs, csrDER, now)
	}, storage.From(stored), storage.Queue(storage.Job{OrderID: orderID}, &claim))
	if err != nil {
		return nil, notFound(err, "order")
	}
	// The authorizations were valid when the order was finalized, and the
	// order's status no longer depends on them.
	// signErr is written by the job before it hands its order over, so it
	// is read only when runJob received that order.
	var signErr error
	if done, ok := runJob(ctx, a, a.cfg.FinalizeWait, func(ctx context.Context) *acme.Order {
		out, err := a.issueOnce(ctx, claim, o)
		signErr = err
		return out
	}); ok {
		if signErr != nil {
			// The store's "retry later" (503 + Retry-After): the order
			// is ready again and the signer re-opens for the next try.
			return nil, fmt.Errorf("%w: %w", storage.ErrUnavailable, signErr)
		}
		o = done
	}
	return a.view(o, authzs), nil
}

// csrVetter is a Signer that refuses some CSRs acme.CheckCSR accepts:
// Vault's sign-verbatim copies a CSR's subject and extensions as they are,
// so that signer takes none but the names acmed checked.
type csrVetter interface {
	CheckCSR(csr *x509.CertificateRequest) error
}

// issue signs the certificate of o, a processing order as stored, from the
// CSR kept with it, and records it with the order in one write. It returns
// the order as written, or nil if the result could not be recorded. A
// job whose order is no longer processing does nothing.
func (a *Authority) issue(ctx context.Context, claim storage.Claim, o *acme.Order) *acme.Order {
	out, _ := a.issueOnce(ctx, claim, o)
	return out
}

// issueOnce is issue that also returns the signer's transient failure
// (wrapping ca.ErrUnavailable): then the order is back to ready, as
// written, and not invalid, so that the client may finalize it again.
func (a *Authority) issueOnce(ctx context.Context, claim storage.Claim, o *acme.Order) (*acme.Order, error) {
	log := a.log.With("order", o.ID)
	if o.Status != acme.StatusProcessing {
		a.finish(ctx, claim)
		return o, nil
	}
	cert, prob, signErr := a.sign(ctx, o)
	if signErr != nil {
		log.WarnContext(ctx, "issuance postponed: signer unavailable", "err", signErr)
		out, err := a.cfg.Store.UpdateOrder(ctx, o.ID, acme.AbortFinalize, storage.From(o), storage.Finishing(claim))
		switch {
		case isProblem(err):
			a.finish(ctx, claim)
			return nil, nil
		case err != nil:
			log.ErrorContext(ctx, "issuance job: record postponement", "err", err)
			return nil, nil
		}
		return out, signErr
	}
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
		return nil, nil
	case err != nil:
		log.ErrorContext(ctx, "issuance job: record result", "err", err)
		return nil, nil
	}
	if cert != nil {
		attrs := []any{"account", o.AccountID, "order", o.ID, "serial", cert.Serial,
			"identifiers", cert.Identifiers, "profile", cert.Profile, "not_after", cert.NotAfter}
		if cert.Replaces != "" {
			attrs = append(attrs, "replaces", cert.Replaces)
		}
		a.audit(ctx, "certificate.issue", attrs...)
		a.cfg.Metrics.Issued(cert.Profile)
	}
	return out, nil
}

// sign issues the certificate of a processing order. Failures become the
// order's error; their cause goes to the log only.
//
// A signer that is unavailable for now (ca.ErrUnavailable: an HSM session
// that closed) is not the order's fault: that error is returned instead of
// a problem, and the order is not failed.
func (a *Authority) sign(ctx context.Context, o *acme.Order) (*acme.Certificate, *acme.Problem, error) {
	csr, err := x509.ParseCertificateRequest(o.CSR)
	if err != nil {
		return nil, acme.BadCSR("cannot parse CSR: %v", err), nil
	}
	prof := a.profileOf(o)
	if prof == nil {
		return nil, acme.InvalidProfile("the order's profile %q is no longer offered", o.Profile), nil
	}
	notBefore, notAfter, p := prof.Window(a.now(), o.NotBefore, o.NotAfter, prof.MaxValidity)
	if p != nil {
		return nil, p, nil
	}
	req := ca.Request{
		PublicKey: csr.PublicKey, NotBefore: notBefore, NotAfter: notAfter,
		CommonName:  prof.CommonNameFor(csr.Subject.CommonName, o.Identifiers),
		ExtKeyUsage: prof.ExtKeyUsage, KeyUsage: prof.KeyUsage,
		OCSPServer:            a.cfg.OCSPServer,
		CRLDistributionPoints: a.cfg.CRLDistributionPoints,
		CSR:                   o.CSR,
	}
	req.DNSNames, req.IPAddresses = profile.SANs(o.Identifiers)
	if o.SPIFFEID != "" {
		u, err := url.Parse(o.SPIFFEID)
		if err != nil {
			a.log.ErrorContext(ctx, "issuance failed: stored SPIFFE ID", "order", o.ID, "err", err)
			return nil, acme.ServerInternal("issuance failed"), nil
		}
		req.URIs = []*url.URL{u}
	}
	issued, err := a.cfg.Signer.Sign(ctx, req)
	if errors.Is(err, ca.ErrUnavailable) {
		return nil, nil, err
	}
	if err != nil {
		a.log.ErrorContext(ctx, "issuance failed", "order", o.ID, "err", err)
		return nil, acme.ServerInternal("issuance failed"), nil
	}
	return &acme.Certificate{
		Serial: issued.Serial, AccountID: o.AccountID, OrderID: o.ID, ChainPEM: issued.ChainPEM,
		Identifiers: o.Identifiers, NotAfter: issued.Leaf.NotAfter,
		NotBefore: issued.Leaf.NotBefore, Profile: prof.Name,
		// The store marks the replaced certificate in the same write.
		Replaces: o.Replaces, EABKeyName: o.EABKeyName,
		// Its CRL and OCSP answers are that issuer's, after a rotation too.
		Issuer: issued.Issuer,
	}, nil, nil
}

// profileOf is the profile of an order, nil when it is no longer offered.
// Orders from before profiles have none and were mtls certificates.
func (a *Authority) profileOf(o *acme.Order) *profile.Profile {
	if o.Profile == "" {
		return a.cfg.Profiles.Get(profile.MTLS)
	}
	return a.cfg.Profiles.Get(o.Profile)
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
