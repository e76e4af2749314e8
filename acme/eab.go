package acme

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// EABKey is an external account binding key (RFC 8555 §7.3.4) an operator
// hands a team: the MAC key its ACME client proves it holds when it opens an
// account, and the policy every order of such an account is bound to.
type EABKey struct {
	KID  string
	Name string
	HMAC []byte // the MAC key; shown once, when the key is created
	// Allow and Prevalidated are identifier patterns (acme/policy): an
	// account bound to the key may order what one of them matches; what
	// Prevalidated matches needs no challenge.
	Allow        []string
	Prevalidated []string
	// Profiles are the certificate profiles the key's accounts may use
	// (none: any); the first is their default unless the server's is
	// among them.
	Profiles    []string
	MaxValidity time.Duration // 0: the profile's maximum
	// SPIFFEID is the URI SAN of the X509-SVIDs the key's accounts get
	// under a SPIFFE profile, which needs one.
	SPIFFEID  string
	Expires   time.Time // zero: never; after it no new account binds to the key
	SingleUse bool      // one account at most
	Revoked   bool
	RevokedAt time.Time
	CreatedAt time.Time
	Accounts  []string // the accounts bound to the key, oldest first
}

// Bindable reports why no new account may bind to k at now, or nil.
func (k *EABKey) Bindable(now time.Time) *Problem {
	switch {
	case k.Revoked:
		return Unauthorized("external account binding key %q is revoked", k.KID)
	case !k.Expires.IsZero() && !now.Before(k.Expires):
		return Unauthorized("external account binding key %q has expired", k.KID)
	case k.SingleUse && len(k.Accounts) > 0:
		return Unauthorized("external account binding key %q is single-use and already bound to an account", k.KID)
	}
	return nil
}

// BoundTo reports whether the account id is bound to k.
func (k *EABKey) BoundTo(id string) bool {
	for _, a := range k.Accounts {
		if a == id {
			return true
		}
	}
	return false
}

// eabAlgorithms are the MAC algorithms §7.3.4 allows.
var eabAlgorithms = []jose.SignatureAlgorithm{jose.HS256, jose.HS384, jose.HS512}

// EABBinding is a parsed externalAccountBinding whose structure has been
// checked but whose MAC has not: the key to check it with is looked up by
// KID.
type EABBinding struct {
	KID string
	jws *jose.JSONWebSignature
}

// ParseEAB checks the structure of an externalAccountBinding (§7.3.4): a
// flattened JWS, MACed with HS256/384/512, whose protected header names a
// kid and the new-account url, and whose payload is accountKey, the key
// that signed the outer request. A structurally bad binding is malformed;
// one over another key or URL is unauthorized, as its MAC would not save it.
func ParseEAB(raw json.RawMessage, accountKey *jose.JSONWebKey, url string) (*EABBinding, error) {
	s := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(s, "{") {
		return nil, Malformed("externalAccountBinding must be a flattened JWS object")
	}
	jws, err := jose.ParseSigned(s, eabAlgorithms)
	if err != nil {
		return nil, Malformed("externalAccountBinding: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, Malformed("externalAccountBinding must carry exactly one signature")
	}
	h := jws.Signatures[0].Protected
	if h.KeyID == "" {
		return nil, Malformed("externalAccountBinding: the protected header has no kid")
	}
	if h.JSONWebKey != nil || h.Nonce != "" {
		return nil, Malformed("externalAccountBinding: the protected header must not carry a jwk or a nonce")
	}
	u, _ := h.ExtraHeaders["url"].(string)
	if u == "" {
		return nil, Malformed("externalAccountBinding: the protected header has no url")
	}
	if u != url {
		return nil, Unauthorized("externalAccountBinding: url %q is not the new-account URL", u)
	}
	var inner jose.JSONWebKey
	if err := inner.UnmarshalJSON(jws.UnsafePayloadWithoutVerification()); err != nil {
		return nil, Malformed("externalAccountBinding: the payload is not a JWK: %v", err)
	}
	want, err := Thumbprint(accountKey)
	if err != nil {
		return nil, BadPublicKey("%v", err)
	}
	got, err := Thumbprint(&inner)
	if err != nil || got != want {
		return nil, Unauthorized("externalAccountBinding: the payload is not the account's key")
	}
	return &EABBinding{KID: h.KeyID, jws: jws}, nil
}

// Verify checks the binding's MAC with the key's secret.
func (b *EABBinding) Verify(secret []byte) error {
	if _, err := b.jws.Verify(secret); err != nil {
		return Unauthorized("externalAccountBinding: the MAC does not verify with key %q", b.KID)
	}
	return nil
}
