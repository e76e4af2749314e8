package main

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/acme/profile"
)

// profileSpec is one entry of the config file's profiles: section. A
// setting left out keeps the value of the built-in profile of the same
// name, or of mtls for a new name; max_validity left out is
// default_validity (or the base's maximum, if that is longer).
type profileSpec struct {
	Description     *string  `yaml:"description"`
	DefaultValidity *string  `yaml:"default_validity"`
	MaxValidity     *string  `yaml:"max_validity"`
	Backdate        *string  `yaml:"backdate"`
	ExtKeyUsages    []string `yaml:"ext_key_usages"`
	KeyUsages       []string `yaml:"key_usages"`
	KeyTypes        []string `yaml:"key_types"`
	RSAMinBits      *int     `yaml:"rsa_min_bits"`
	RSAMaxBits      *int     `yaml:"rsa_max_bits"`
	MaxIdentifiers  *int     `yaml:"max_identifiers"`
	IdentifierTypes []string `yaml:"identifier_types"`
	CommonName      *string  `yaml:"common_name"`
	SPIFFE          *bool    `yaml:"spiffe"`
}

// profileKeys are profileSpec's YAML keys: yaml.Node.Decode cannot refuse
// unknown ones, and a misspelt setting must not be silently ignored.
func profileKeys() []string {
	return []string{"description", "default_validity", "max_validity", "backdate", "ext_key_usages",
		"key_usages", "key_types", "rsa_min_bits", "rsa_max_bits", "max_identifiers", "identifier_types",
		"common_name", "spiffe"}
}

// namedSpec keeps the file's order, so that errors come in it, and the
// file's path, so that they name it.
type namedSpec struct {
	name string
	spec profileSpec
	path string
}

// decodeProfiles reads the profiles: section, a mapping of names to
// settings. Errors name the file's line.
func decodeProfiles(path string, n *yaml.Node) ([]namedSpec, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s line %d: profiles: want a mapping of profile names to settings", path, n.Line)
	}
	var specs []namedSpec
	for i := 0; i+1 < len(n.Content); i += 2 {
		name, body := n.Content[i].Value, n.Content[i+1]
		if body.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("config file %s line %d: profile %q: want a mapping of settings", path, body.Line, name)
		}
		for j := 0; j+1 < len(body.Content); j += 2 {
			if k := body.Content[j]; !slices.Contains(profileKeys(), k.Value) {
				return nil, fmt.Errorf("config file %s line %d: profile %q: unknown setting %q", path, k.Line, name, k.Value)
			}
		}
		var s profileSpec
		if err := body.Decode(&s); err != nil {
			// yaml's type errors come one per line; an operator gets one.
			msg := strings.Join(strings.Fields(strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:")), " ")
			return nil, fmt.Errorf("config file %s: profile %q: %s", path, name, msg)
		}
		specs = append(specs, namedSpec{name, s, path})
	}
	return specs, nil
}

// profileSet builds the server's profiles: the built-ins with
// --cert-validity, the config file's, and --default-profile.
func (c config) profileSet() (*profile.Set, error) {
	builtins := profile.Builtins(c.certValidity())
	var configured []profile.Profile
	for _, ns := range c.Profiles {
		base := builtins[0] // mtls
		for _, b := range builtins {
			if b.Name == ns.name {
				base = b
			}
		}
		p, err := ns.spec.apply(base)
		if err != nil {
			return nil, fmt.Errorf("config file %s: profile %q: %v", ns.path, ns.name, err)
		}
		p.Name = ns.name
		if err := p.Check(); err != nil {
			return nil, fmt.Errorf("config file %s: %w", ns.path, err)
		}
		configured = append(configured, p)
	}
	return profile.NewSet(c.certValidity(), configured, c.DefaultProfile)
}

func (c config) certValidity() time.Duration {
	if c.CertValidity == 0 {
		return 168 * time.Hour
	}
	return c.CertValidity
}

// apply returns base changed by the settings s gives.
func (s profileSpec) apply(p profile.Profile) (profile.Profile, error) {
	if s.Description != nil {
		p.Description = *s.Description
	}
	maxGiven := s.MaxValidity != nil
	for _, d := range []struct {
		key string
		v   *string
		to  *time.Duration
	}{{"default_validity", s.DefaultValidity, &p.DefaultValidity}, {"max_validity", s.MaxValidity, &p.MaxValidity}, {"backdate", s.Backdate, &p.Backdate}} {
		if d.v == nil {
			continue
		}
		v, err := time.ParseDuration(*d.v)
		if err != nil {
			return p, fmt.Errorf("%s %q: want a duration such as 24h or 2160h", d.key, *d.v)
		}
		*d.to = v
	}
	switch {
	case !maxGiven && p.DefaultValidity > p.MaxValidity:
		p.MaxValidity = p.DefaultValidity
	case maxGiven && s.DefaultValidity == nil && p.DefaultValidity > p.MaxValidity:
		p.DefaultValidity = p.MaxValidity
	}
	if s.ExtKeyUsages != nil {
		p.ExtKeyUsage = nil
		for _, name := range s.ExtKeyUsages {
			u, ok := extKeyUsage(name)
			if !ok {
				return p, fmt.Errorf("ext_key_usages: %q is not one of serverAuth, clientAuth", name)
			}
			p.ExtKeyUsage = append(p.ExtKeyUsage, u)
		}
	}
	if s.KeyUsages != nil {
		p.KeyUsage = 0
		for _, name := range s.KeyUsages {
			u, ok := keyUsage(name)
			if !ok {
				return p, fmt.Errorf("key_usages: %q is not one of digitalSignature, keyEncipherment, keyAgreement", name)
			}
			p.KeyUsage |= u
		}
	}
	if s.KeyTypes != nil {
		p.KeyTypes = nil
		for _, k := range s.KeyTypes {
			p.KeyTypes = append(p.KeyTypes, profile.KeyType(k))
		}
	}
	if s.IdentifierTypes != nil {
		p.IdentifierTypes = nil
		for _, t := range s.IdentifierTypes {
			p.IdentifierTypes = append(p.IdentifierTypes, acme.IdentifierType(t))
		}
	}
	setIf(&p.RSAMinBits, s.RSAMinBits)
	setIf(&p.RSAMaxBits, s.RSAMaxBits)
	setIf(&p.MaxIdentifiers, s.MaxIdentifiers)
	setIf(&p.SPIFFE, s.SPIFFE)
	if s.CommonName != nil {
		p.CommonName = profile.CommonName(*s.CommonName)
	}
	return p, nil
}

func setIf[T any](to *T, v *T) {
	if v != nil {
		*to = *v
	}
}

// extKeyUsage and keyUsage take the names of RFC 5280's ASN.1, as openssl
// prints them too.
func extKeyUsage(name string) (x509.ExtKeyUsage, bool) {
	switch name {
	case "serverAuth":
		return x509.ExtKeyUsageServerAuth, true
	case "clientAuth":
		return x509.ExtKeyUsageClientAuth, true
	}
	return 0, false
}

func keyUsage(name string) (x509.KeyUsage, bool) {
	switch name {
	case "digitalSignature":
		return x509.KeyUsageDigitalSignature, true
	case "keyEncipherment":
		return x509.KeyUsageKeyEncipherment, true
	case "keyAgreement":
		return x509.KeyUsageKeyAgreement, true
	}
	return 0, false
}
