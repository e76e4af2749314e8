package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/authority"
)

// maxBody bounds a JWS request: the largest legitimate one, a finalize with
// an RSA-8192 CSR, stays well under it.
const maxBody = 64 << 10

// minRSABits is the smallest RSA account key accepted.
const minRSABits = 2048

// acceptedAlgs are the JWS algorithms accounts may sign with: no "none",
// no MACs (§6.2).
func acceptedAlgs() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}
}

func acceptedAlgNames() []string {
	var names []string
	for _, a := range acceptedAlgs() {
		names = append(names, string(a))
	}
	return names
}

// keyRule says which key reference §6.2 allows on an endpoint.
type keyRule int

const (
	needKID keyRule = iota
	needJWK
	eitherKey // revokeCert
)

// flattened is the JWS flattened JSON serialization §6.2 requires. Header
// and Signatures are read only to refuse them.
type flattened struct {
	Protected  string          `json:"protected"`
	Payload    *string         `json:"payload"`
	Signature  string          `json:"signature"`
	Header     json.RawMessage `json:"header"`
	Signatures json.RawMessage `json:"signatures"`
}

type protectedHeader struct {
	Alg   string          `json:"alg"`
	Nonce string          `json:"nonce"`
	URL   string          `json:"url"`
	JWK   json.RawMessage `json:"jwk"`
	KID   string          `json:"kid"`
}

// parsedJWS is a JWS whose form and header passed the checks of §6.2 but
// whose signature is not yet verified.
type parsedJWS struct {
	header protectedHeader
	jws    *jose.JSONWebSignature
	jwk    *jose.JSONWebKey
}

func parseJWS(body []byte) (*parsedJWS, error) {
	var f flattened
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, acme.Malformed("request body is not a JWS in flattened JSON serialization: %v", err)
	}
	switch {
	case f.Signatures != nil:
		return nil, acme.Malformed("JWS must have exactly one signature, in flattened serialization")
	case f.Header != nil:
		return nil, acme.Malformed("JWS must not have an unprotected header")
	case f.Protected == "":
		return nil, acme.Malformed("JWS has no protected header")
	case f.Payload == nil:
		return nil, acme.Malformed("JWS has no payload")
	case f.Signature == "":
		return nil, acme.Malformed("JWS has no signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(f.Protected)
	if err != nil {
		return nil, acme.Malformed("JWS protected header is not base64url: %v", err)
	}
	var h protectedHeader
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, acme.Malformed("JWS protected header is not JSON: %v", err)
	}
	if !isAccepted(h.Alg) {
		return nil, acme.BadSignatureAlgorithm(acceptedAlgNames(), "JWS algorithm %q is not accepted", h.Alg)
	}
	// The flattened form's parts, joined, are the compact serialization of
	// the same JWS: go-jose verifies the very same signing input, without
	// parsing the whole body's JSON a second time.
	jws, err := jose.ParseSignedCompact(f.Protected+"."+*f.Payload+"."+f.Signature, acceptedAlgs())
	if err != nil {
		return nil, acme.Malformed("cannot parse JWS: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, acme.Malformed("JWS must have exactly one signature")
	}
	p := &parsedJWS{header: h, jws: jws}
	if h.JWK != nil {
		p.jwk = jws.Signatures[0].Protected.JSONWebKey
		if err := checkAccountKey(p.jwk); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func isAccepted(alg string) bool {
	for _, a := range acceptedAlgs() {
		if string(a) == alg {
			return true
		}
	}
	return false
}

// checkAccountKey refuses keys a client must not use: private or symmetric
// keys, and RSA keys too small to trust.
func checkAccountKey(k *jose.JSONWebKey) error {
	if k == nil || !k.Valid() {
		return acme.BadPublicKey("JWS jwk is not a valid key")
	}
	if !k.IsPublic() {
		return acme.BadPublicKey("JWS jwk must be a public key")
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return acme.BadPublicKey("RSA key of %d bits; at least %d are required", pub.N.BitLen(), minRSABits)
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return acme.BadPublicKey("key type %T is not accepted", k.Key)
	}
	return nil
}

// verify checks the signature against key and returns the payload.
func (p *parsedJWS) verify(key *jose.JSONWebKey) ([]byte, error) {
	payload, err := p.jws.Verify(key)
	if err != nil {
		return nil, acme.Malformed("JWS signature is invalid")
	}
	return payload, nil
}

// lookupOf names the resource a request's URL is about, so that its read
// joins the nonce's round trip; for a finalize, the CSR's key too, to be
// checked against the blocked keys with no read of its own.
func lookupOf(r *http.Request, jws *parsedJWS) authority.Lookup {
	v := mux.Vars(r)
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, orderPath) && strings.HasSuffix(p, "/finalize"):
		return authority.Lookup{OrderID: v["id"], KeyHash: csrKeyHash(jws)}
	case strings.HasPrefix(p, orderPath):
		return authority.Lookup{OrderID: v["id"]}
	case strings.HasPrefix(p, authzPath):
		return authority.Lookup{AuthzID: v["id"]}
	case strings.HasPrefix(p, challengePath):
		return authority.Lookup{AuthzID: v["authz"]}
	case strings.HasPrefix(p, certPath):
		// Read in the canonical form, which every certificate issued
		// since it was introduced is stored in; an older one is read
		// again by its legacy form (authority.Certificate).
		serial, _ := acme.NormalizeSerial(v["serial"])
		return authority.Lookup{Serial: serial}
	}
	return authority.Lookup{}
}

// csrKeyHash is acme.CSRKeyHash of a finalize payload's CSR, read before
// the signature is checked: only a lookup rides on it, whose answer the
// authority uses for the very CSR it then parses from the verified
// payload (the same bytes), and for no other. "" when there is none.
func csrKeyHash(jws *parsedJWS) string {
	var p struct {
		CSR string `json:"csr"`
	}
	if json.Unmarshal(jws.jws.UnsafePayloadWithoutVerification(), &p) != nil {
		return ""
	}
	der, err := base64.RawURLEncoding.DecodeString(p.CSR)
	if err != nil {
		return ""
	}
	hash, _ := acme.CSRKeyHash(der)
	return hash
}

func setReplayNonce(w http.ResponseWriter, nonce string) {
	if nonce != "" {
		w.Header().Set("Replay-Nonce", nonce)
	}
}

// request is an authenticated ACME POST.
type request struct {
	payload []byte
	account *acme.Account     // set when signed with kid, or with the jwk of an account
	caller  *authority.Caller // set when signed with kid
	jwk     *jose.JSONWebKey  // set when signed with jwk
	url     string
	jws     *parsedJWS
}

// authenticate applies every JWS rule of §6: media type, size, form,
// algorithm, key reference, url, signature and nonce.
func (s *Server) authenticate(ctx context.Context, w http.ResponseWriter, r *http.Request, rule keyRule) (*request, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/jose+json" {
		return nil, acme.UnsupportedMediaType("Content-Type must be application/jose+json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, acme.TooLarge("request body exceeds %d bytes", maxBody)
	}
	if err != nil {
		// A body cut short is a client that hung up (or a broken one):
		// its business, logged at debug.
		s.log.DebugContext(ctx, "client went away while sending the request", "method", r.Method, "path", r.URL.Path, "err", err)
		return nil, acme.Malformed("reading request body: %v", err)
	}
	p, err := parseJWS(body)
	if err != nil {
		return nil, err
	}
	h := p.header
	switch {
	case (h.JWK == nil) == (h.KID == ""):
		return nil, acme.Malformed("JWS must have exactly one of jwk and kid")
	case rule == needKID && h.KID == "":
		return nil, acme.Malformed("this request must be signed with kid, the account URL")
	case rule == needJWK && h.JWK == nil:
		return nil, acme.Malformed("this request must be signed with jwk")
	}
	want := s.baseURL + r.URL.RequestURI()
	if h.URL != want {
		return nil, acme.Unauthorized("JWS url %q does not match the request URL %q", h.URL, want)
	}
	req := &request{url: want, jwk: p.jwk, jws: p}
	if h.KID == "" {
		if req.payload, err = p.verify(p.jwk); err != nil {
			return nil, err
		}
		next, err := s.auth.ConsumeNonce(ctx, h.Nonce)
		setReplayNonce(w, next)
		if err != nil {
			return nil, err
		}
		return req, nil
	}
	id, ok := strings.CutPrefix(h.KID, s.baseURL+accountPath)
	if !ok || id == "" || strings.Contains(id, "/") {
		return nil, acme.AccountDoesNotExist("kid %q is not an account URL of this server", h.KID)
	}
	// The nonce, the account and the resource the URL names come in one
	// store round trip; the nonce verdict waits until the signature is
	// checked.
	next, caller, nonceErr := s.auth.ConsumeNonceForAccount(ctx, h.Nonce, id, lookupOf(r, p))
	setReplayNonce(w, next)
	if caller == nil {
		return nil, nonceErr
	}
	acct := caller.Account
	if acct.Status != acme.StatusValid {
		return nil, acme.Unauthorized("account is %s", acct.Status)
	}
	key, err := s.keys.parse(acct.Key)
	if err != nil {
		return nil, err
	}
	req.account, req.caller = acct, caller
	if req.payload, err = p.verify(key); err != nil {
		return nil, err
	}
	if nonceErr != nil {
		return nil, nonceErr
	}
	return req, nil
}
