package authority

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/policy"
	"github.com/acmed/acmed/acme/profile"
)

// EABKeySpec is what an operator asks for in `acmed admin eab create`.
type EABKeySpec struct {
	Name         string
	Allow        []string
	Prevalidated []string
	Profiles     []string
	MaxValidity  time.Duration // 0: the server's --cert-validity
	SPIFFEID     string
	Expires      time.Duration // from now; 0: never
	SingleUse    bool
}

// eabSecretBytes is the MAC key's size: 512 bits, so that a client may MAC
// with any of HS256/384/512 (RFC 7518 §3.2 asks a key at least as long as
// the hash; go-jose, which lego uses, enforces it).
const eabSecretBytes = 64

func (s EABKeySpec) check(profiles *profile.Set) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	if s.Name == "" {
		return bad("name: required")
	}
	if _, err := policy.Parse(s.Allow); err != nil {
		return bad("allow: %v", err)
	}
	if _, err := policy.Parse(s.Prevalidated); err != nil {
		return bad("prevalidated: %v", err)
	}
	if s.MaxValidity < 0 {
		return bad("max_validity %s: must be positive", s.MaxValidity)
	}
	if s.Expires < 0 {
		return bad("expires %s: must be positive", s.Expires)
	}
	if s.SPIFFEID != "" {
		if _, err := acme.ParseSPIFFEID(s.SPIFFEID); err != nil {
			return bad("spiffe_id %q: %v", s.SPIFFEID, err)
		}
	}
	for _, name := range s.Profiles {
		// A key naming a profile the server lacks would make its
		// accounts' orders fail later, far from the mistake.
		p := profiles.Get(name)
		switch {
		case p == nil:
			return bad("profile %q: no such profile (the directory's meta.profiles lists them)", name)
		case p.SPIFFE && s.SPIFFEID == "":
			return bad("profile %q issues SPIFFE IDs: give the key a spiffe_id", name)
		}
	}
	return nil
}

// newKID returns a random kid that does not start with '-': operators pass
// kids as command-line arguments (acmed admin eab show KID, lego --kid
// KID), where a leading '-' reads as a flag. One in 64 draws does.
func (a *Authority) newKID() (string, error) {
	for {
		kid, err := a.randomID(16)
		if err != nil || kid[0] != '-' {
			return kid, err
		}
	}
}

// newEABSecret returns a random MAC key whose base64url form does not start
// with '-', for the same reason as newKID: clients take it as an argument
// (certbot --eab-hmac-key KEY, lego --hmac KEY). '-' is base64url digit 62,
// so a first byte whose top six bits are 62 would print one.
func (a *Authority) newEABSecret() ([]byte, error) {
	secret := make([]byte, eabSecretBytes)
	for {
		if _, err := io.ReadFull(a.cfg.Rand, secret); err != nil {
			return nil, fmt.Errorf("random: %w", err)
		}
		if secret[0]>>2 != 62 {
			return secret, nil
		}
	}
}

// AdminCreateEABKey makes a key with a random kid and MAC key. The MAC key
// is in the result, and never shown again by the admin API.
func (a *Authority) AdminCreateEABKey(ctx context.Context, by Operator, s EABKeySpec) (*acme.EABKey, error) {
	if err := s.check(a.cfg.Profiles); err != nil {
		a.audit(ctx, "admin.eab.create", "caller", string(by), "name", s.Name, "err", err)
		return nil, err
	}
	kid, err := a.newKID()
	if err != nil {
		return nil, err
	}
	secret, err := a.newEABSecret()
	if err != nil {
		return nil, err
	}
	now := a.now()
	k := &acme.EABKey{
		KID: kid, Name: s.Name, HMAC: secret, Allow: s.Allow, Prevalidated: s.Prevalidated,
		Profiles: s.Profiles, MaxValidity: s.MaxValidity, SPIFFEID: s.SPIFFEID, SingleUse: s.SingleUse,
		CreatedAt: now,
	}
	if s.Expires > 0 {
		k.Expires = now.Add(s.Expires)
	}
	if err := a.cfg.Store.CreateEABKey(ctx, k); err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.eab.create", "caller", string(by), "eab_kid", kid, "name", s.Name,
		"allow", s.Allow, "prevalidated", s.Prevalidated, "profiles", s.Profiles,
		"max_validity", s.MaxValidity.String(), "spiffe_id", s.SPIFFEID, "expires", k.Expires, "single_use", s.SingleUse)
	return k, nil
}

// AdminEABKeys lists every key.
func (a *Authority) AdminEABKeys(ctx context.Context, by Operator) ([]*acme.EABKey, error) {
	keys, err := a.cfg.Store.ListEABKeys(ctx)
	if err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.eab.list", "caller", string(by), "count", len(keys))
	return keys, nil
}

// AdminEABKey returns one key; a missing one is storage.ErrNotFound.
func (a *Authority) AdminEABKey(ctx context.Context, by Operator, kid string) (*acme.EABKey, error) {
	k, err := a.cfg.Store.EABKey(ctx, kid)
	if err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.eab.show", "caller", string(by), "eab_kid", kid)
	return k, nil
}

// AdminRevokeEABKey revokes a key for good: no account binds to it any
// more, and the accounts bound to it can neither order nor finalize.
// Revoking a revoked key changes nothing and is not an error.
func (a *Authority) AdminRevokeEABKey(ctx context.Context, by Operator, kid string) (*acme.EABKey, error) {
	k, err := a.cfg.Store.UpdateEABKey(ctx, kid, func(cur *acme.EABKey) error {
		if cur.Revoked {
			return errUnchanged
		}
		cur.Revoked, cur.RevokedAt = true, a.now()
		return nil
	})
	changed := true
	if errors.Is(err, errUnchanged) {
		changed = false
		k, err = a.cfg.Store.EABKey(ctx, kid)
	}
	if err != nil {
		return nil, err
	}
	a.audit(ctx, "admin.eab.revoke", "caller", string(by), "eab_kid", kid, "name", k.Name, "accounts", len(k.Accounts), "changed", changed)
	return k, nil
}
