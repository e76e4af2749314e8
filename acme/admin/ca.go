package admin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme/authority"
)

// caRoutes:
//
//	GET  /admin/v1/ca/issuers   every intermediate the CA has signed with, and its state
//	POST /admin/v1/ca/rotate    make a new intermediate the active one
//
// rotate's body, optional, is a JSON RotateRequest: an intermediate
// signed elsewhere and its key. Unlike the other requests it has a body:
// a private key belongs in no URL (and so in no access log).
func (s *Server) caRoutes(api *mux.Router) {
	s.endpoint(api, "/ca/issuers", map[string]http.Handler{http.MethodGet: s.handle(s.listIssuers)})
	s.endpoint(api, "/ca/rotate", map[string]http.Handler{http.MethodPost: s.handle(s.rotateCA)})
}

// RotateRequest is rotate's body. All empty: a new key, and an
// intermediate signed with the root key in --data.
type RotateRequest struct {
	CertPEM  string `json:"cert_pem,omitempty"`
	KeyPEM   string `json:"key_pem,omitempty"`
	KeyLabel string `json:"key_label,omitempty"`
}

// Issuer is one intermediate as the admin API shows it.
type Issuer struct {
	Name        string     `json:"name"`
	State       string     `json:"state"`
	Subject     string     `json:"subject"`
	NotBefore   time.Time  `json:"not_before"`
	NotAfter    time.Time  `json:"not_after"`
	Fingerprint string     `json:"sha256_fingerprint"`
	CRL         string     `json:"crl,omitempty"`
	Key         string     `json:"key"`
	Created     time.Time  `json:"created"`
	Activated   *time.Time `json:"activated,omitempty"`
	Retired     *time.Time `json:"retired,omitempty"`
	By          string     `json:"by,omitempty"`
	Loaded      bool       `json:"loaded"`
}

// IssuerList is every issuer, oldest first.
type IssuerList struct {
	Issuers []Issuer `json:"issuers"`
}

func issuerView(i authority.IssuerInfo) Issuer {
	return Issuer{
		Name: i.Name, State: i.State, Subject: i.Subject, NotBefore: i.NotBefore.UTC(), NotAfter: i.NotAfter.UTC(),
		Fingerprint: i.Fingerprint, CRL: i.CRL, Key: i.Key, Created: i.Created.UTC(),
		Activated: timePtr(i.Activated), Retired: timePtr(i.Retired), By: i.By, Loaded: i.Loaded,
	}
}

func (s *Server) listIssuers(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	list, err := s.auth.AdminIssuers(ctx, by)
	if err != nil {
		return nil, err
	}
	out := IssuerList{Issuers: make([]Issuer, 0, len(list))}
	for _, i := range list {
		out.Issuers = append(out.Issuers, issuerView(i))
	}
	return out, nil
}

// maxRotateBody bounds rotate's body: a certificate and a key are a few
// KB.
const maxRotateBody = 1 << 20

func (s *Server) rotateCA(ctx context.Context, r *http.Request, by authority.Operator) (any, error) {
	var req RotateRequest
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRotateBody))
	if err != nil {
		return nil, badRequest("body: " + err.Error())
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, badRequest("body: not a JSON object with cert_pem, key_pem and key_label: " + err.Error())
		}
	}
	info, err := s.auth.AdminRotateCA(ctx, by, authority.RotateSpec{
		CertPEM: []byte(req.CertPEM), KeyPEM: []byte(req.KeyPEM), KeyLabel: req.KeyLabel,
	})
	if err != nil {
		return nil, err
	}
	return issuerView(*info), nil
}
