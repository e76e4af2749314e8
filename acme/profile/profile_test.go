package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

var t0 = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

const week = 168 * time.Hour

func builtin(t *testing.T, name string) *Profile {
	t.Helper()
	s, err := NewSet(week, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Get(name)
	if p == nil {
		t.Fatalf("no built-in profile %q", name)
	}
	return p
}

func TestWindow(t *testing.T) {
	mtls, short := builtin(t, MTLS), builtin(t, ShortLived)
	tests := []struct {
		name   string
		p      *Profile
		limit  time.Duration // 0: the profile's maximum
		nb, na time.Time
		wantNB time.Time
		wantNA time.Time
		detail string // a refusal's detail contains it
	}{
		// mtls keeps --cert-validity's meaning: a week from issuance,
		// after a minute's backdate.
		{name: "mtls defaults", p: mtls, wantNB: t0.Add(-time.Minute), wantNA: t0.Add(week)},
		{name: "future notBefore", p: mtls, nb: t0.Add(time.Hour), wantNB: t0.Add(time.Hour), wantNA: t0.Add(time.Hour + week + time.Minute)},
		{name: "explicit", p: mtls, nb: t0, na: t0.Add(time.Hour), wantNB: t0, wantNA: t0.Add(time.Hour)},
		{name: "only notAfter", p: mtls, na: t0.Add(time.Hour), wantNB: t0.Add(-time.Minute), wantNA: t0.Add(time.Hour)},
		{name: "longest", p: mtls, na: t0.Add(week), wantNB: t0.Add(-time.Minute), wantNA: t0.Add(week)},
		{name: "too long", p: mtls, nb: t0, na: t0.Add(week + time.Hour), detail: `at most 168h1m0s from notBefore (profile "mtls"), so no later than 2026-12-04T12:01:00Z`},
		{name: "reversed", p: mtls, nb: t0.Add(time.Hour), na: t0, detail: "later than notBefore"},
		{name: "past notAfter", p: mtls, nb: t0.Add(-50 * time.Minute), na: t0.Add(-time.Minute), detail: "in the past"},
		{name: "notBefore far past", p: mtls, nb: t0.Add(-2 * time.Hour), na: t0.Add(time.Hour), detail: "more than 1h0m0s in the past"},
		{name: "notBefore far future", p: mtls, nb: t0.Add(2 * week), detail: "too far in the future"},
		// shortlived: 24h from notBefore to notAfter, backdate included.
		{name: "shortlived defaults", p: short, wantNB: t0.Add(-time.Minute), wantNA: t0.Add(24*time.Hour - time.Minute)},
		{name: "shortlived 2 days", p: short, na: t0.Add(48 * time.Hour), detail: "at most 24h0m0s"},
		{name: "shortlived 1h", p: short, na: t0.Add(time.Hour), wantNB: t0.Add(-time.Minute), wantNA: t0.Add(time.Hour)},
		// An EAB key's --max-validity caps the default and the maximum.
		{name: "key cap default", p: mtls, limit: 2 * time.Hour, wantNB: t0.Add(-time.Minute), wantNA: t0.Add(2*time.Hour - time.Minute)},
		{name: "key cap refuses", p: mtls, limit: 2 * time.Hour, na: t0.Add(3 * time.Hour), detail: "at most 2h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.p.Limit(tt.limit)
			nb, na, p := tt.p.Window(t0, tt.nb, tt.na, limit)
			if tt.detail != "" {
				if p == nil || !errors.Is(p, acme.ErrMalformed) || !strings.Contains(p.Detail, tt.detail) {
					t.Fatalf("Window = %s..%s, %v; want malformed containing %q", nb, na, p, tt.detail)
				}
				return
			}
			if p != nil || !nb.Equal(tt.wantNB) || !na.Equal(tt.wantNA) {
				t.Fatalf("Window = %s..%s, %v; want %s..%s", nb, na, p, tt.wantNB, tt.wantNA)
			}
		})
	}
}

// A --cert-validity as short as the minimum still yields a usable mtls
// window: the backdate does not eat into it.
func TestWindowShortCertValidity(t *testing.T) {
	s, err := NewSet(time.Minute, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	p := s.Get(MTLS)
	nb, na, prob := p.Window(t0, time.Time{}, time.Time{}, p.MaxValidity)
	if prob != nil || !na.Equal(t0.Add(time.Minute)) || !nb.Equal(t0.Add(-time.Minute)) {
		t.Fatalf("Window with --cert-validity 1m = %s..%s, %v", nb, na, prob)
	}
}

func TestCheckKey(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	rsaOf := func(bits int) crypto.PublicKey {
		// Only the modulus length is judged: no need to generate a key.
		return &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), E: 65537}
	}
	mtls := builtin(t, MTLS)
	ecOnly := *mtls
	ecOnly.Name, ecOnly.KeyTypes = "ec-only", []KeyType{ECDSAP256}
	tests := []struct {
		name   string
		p      *Profile
		key    crypto.PublicKey
		detail string // "" for accepted
	}{
		{"P-256", mtls, p256.Public(), ""},
		{"P-384", mtls, p384.Public(), ""},
		{"Ed25519", mtls, edPub, ""},
		{"RSA 2048", mtls, rsaOf(2048), ""},
		{"RSA 4096", mtls, rsaOf(4096), ""},
		{"RSA 1024", mtls, rsaOf(1024), `RSA key of 1024 bits: profile "mtls" takes 2048 to 4096 bits`},
		{"RSA 8192", mtls, rsaOf(8192), "takes 2048 to 4096 bits"},
		{"P-224", mtls, p224.Public(), "ECDSA curve P-224"},
		{"RSA under ec-only", &ecOnly, rsaOf(2048), `rsa key: profile "ec-only" takes ecdsa-p256`},
		{"P-384 under ec-only", &ecOnly, p384.Public(), "ecdsa-p384 key"},
		{"Ed25519 under ec-only", &ecOnly, edPub, "ed25519 key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p.CheckKey(tt.key)
			if tt.detail == "" {
				if p != nil {
					t.Fatalf("refused: %v", p)
				}
				return
			}
			if p == nil || !errors.Is(p, acme.ErrBadPublicKey) || !strings.Contains(p.Detail, tt.detail) {
				t.Fatalf("CheckKey = %v, want badPublicKey containing %q", p, tt.detail)
			}
		})
	}
}

func TestCheckURIs(t *testing.T) {
	id := "spiffe://example.org/ns/payments/sa/api"
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	mtls, spiffe := builtin(t, MTLS), builtin(t, SPIFFE)
	tests := []struct {
		name   string
		p      *Profile
		uris   []*url.URL
		detail string
	}{
		{"none under mtls", mtls, nil, ""},
		{"none under spiffe", spiffe, nil, ""},
		{"own ID under spiffe", spiffe, []*url.URL{mustURL(id)}, ""},
		{"URI under mtls", mtls, []*url.URL{mustURL(id)}, `profile "mtls" issues no URI SANs`},
		{"other ID under spiffe", spiffe, []*url.URL{mustURL("spiffe://example.org/admin")}, `puts only the account's SPIFFE ID`},
		{"two under spiffe", spiffe, []*url.URL{mustURL(id), mustURL("https://example.org")}, `"https://example.org"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p.CheckURIs(tt.uris, id)
			if (tt.detail == "") != (p == nil) || (p != nil && (!errors.Is(p, acme.ErrBadCSR) || !strings.Contains(p.Detail, tt.detail))) {
				t.Fatalf("CheckURIs = %v, want badCSR containing %q", p, tt.detail)
			}
		})
	}
}

func TestCheckIdentifiers(t *testing.T) {
	dns := acme.Identifier{Type: acme.IdentifierDNS, Value: "a.example"}
	ip := acme.Identifier{Type: acme.IdentifierIP, Value: "192.0.2.1"}
	dnsOnly := *builtin(t, MTLS)
	dnsOnly.Name, dnsOnly.IdentifierTypes, dnsOnly.MaxIdentifiers = "dns-only", []acme.IdentifierType{acme.IdentifierDNS}, 2
	tests := []struct {
		name   string
		ids    []acme.Identifier
		detail string
	}{
		{"dns", []acme.Identifier{dns}, ""},
		{"two", []acme.Identifier{dns, dns}, ""},
		{"ip", []acme.Identifier{ip}, `profile "dns-only" does not issue for ip identifiers`},
		{"three", []acme.Identifier{dns, dns, dns}, `order has 3 identifiers; profile "dns-only" allows at most 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := dnsOnly.CheckIdentifiers(tt.ids)
			if (tt.detail == "") != (p == nil) || (p != nil && (!errors.Is(p, acme.ErrRejectedIdentifier) || !strings.Contains(p.Detail, tt.detail))) {
				t.Fatalf("CheckIdentifiers = %v, want rejectedIdentifier containing %q", p, tt.detail)
			}
		})
	}
}

func TestCommonNameFor(t *testing.T) {
	ids := []acme.Identifier{{Type: acme.IdentifierDNS, Value: "a.example"}, {Type: acme.IdentifierDNS, Value: "b.example"}}
	for _, tt := range []struct {
		rule      CommonName
		csr, want string
	}{
		{CNKeep, "b.example", "b.example"}, {CNKeep, "", ""},
		{CNDrop, "b.example", ""}, {CNDrop, "", ""},
		{CNFirst, "b.example", "b.example"}, {CNFirst, "", "a.example"},
	} {
		p := Profile{CommonName: tt.rule}
		if got := p.CommonNameFor(tt.csr, ids); got != tt.want {
			t.Errorf("%s with CSR CN %q = %q, want %q", tt.rule, tt.csr, got, tt.want)
		}
	}
}

func TestBuiltins(t *testing.T) {
	s, err := NewSet(week, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Default() != MTLS {
		t.Fatalf("default %q, want mtls", s.Default())
	}
	dir := s.Directory()
	for _, name := range []string{MTLS, Server, ShortLived, SPIFFE} {
		if dir[name] == "" {
			t.Errorf("meta.profiles has no description for %q", name)
		}
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, tt := range []struct {
		name     string
		eku      []x509.ExtKeyUsage
		lifetime time.Duration
	}{
		{MTLS, both, week + time.Minute},
		{Server, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, week + time.Minute},
		{ShortLived, both, 24 * time.Hour},
		{SPIFFE, both, 24 * time.Hour},
	} {
		p := s.Get(tt.name)
		if !slicesEqual(p.ExtKeyUsage, tt.eku) || p.DefaultValidity != tt.lifetime || p.MaxValidity != tt.lifetime {
			t.Errorf("%s: EKU %v, validity %s..%s; want %v, %s", tt.name, p.ExtKeyUsage, p.DefaultValidity, p.MaxValidity, tt.eku, tt.lifetime)
		}
	}
	if !s.Get(SPIFFE).SPIFFE || s.Get(MTLS).SPIFFE {
		t.Error("only the spiffe built-in issues SPIFFE IDs")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestChoose(t *testing.T) {
	s, err := NewSet(week, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	const id = "spiffe://example.org/api"
	tests := []struct {
		name     string
		asked    string
		allowed  []string
		spiffeID string
		want     string // chosen profile, or the detail of invalidProfile
		refused  bool
	}{
		{name: "default", want: MTLS},
		{name: "asked", asked: ShortLived, want: ShortLived},
		{name: "unknown", asked: "nosuch", want: `profile "nosuch" is not offered`, refused: true},
		{name: "key allows it", asked: Server, allowed: []string{Server, MTLS}, want: Server},
		{name: "key does not allow it", asked: ShortLived, allowed: []string{Server}, want: `profile "shortlived" is not allowed for this account`, refused: true},
		{name: "key without the default", allowed: []string{Server, ShortLived}, want: Server},
		{name: "key with the default", allowed: []string{ShortLived, MTLS}, want: MTLS},
		{name: "spiffe without an ID", asked: SPIFFE, want: "carries none", refused: true},
		{name: "spiffe with an ID", asked: SPIFFE, spiffeID: id, want: SPIFFE},
		{name: "spiffe as the key's only profile", allowed: []string{SPIFFE}, spiffeID: id, want: SPIFFE},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, prob := s.Choose(tt.asked, tt.allowed, tt.spiffeID)
			if tt.refused {
				if prob == nil || !errors.Is(prob, acme.ErrInvalidProfile) || prob.Status != 400 || !strings.Contains(prob.Detail, tt.want) {
					t.Fatalf("Choose = %v, %v; want invalidProfile containing %q", p, prob, tt.want)
				}
				return
			}
			if prob != nil || p.Name != tt.want {
				t.Fatalf("Choose = %v, %v; want %s", p, prob, tt.want)
			}
		})
	}
}

func TestNewSetRefuses(t *testing.T) {
	good := Builtins(week)[0]
	good.Name = "custom"
	mod := func(f func(p *Profile)) []Profile {
		p := good
		f(&p)
		return []Profile{p}
	}
	tests := []struct {
		name       string
		configured []Profile
		def        string
		want       string
	}{
		{"unknown default", nil, "nosuch", `--default-profile "nosuch": no such profile`},
		{"spiffe default", nil, SPIFFE, "cannot be the default"},
		{"bad name", mod(func(p *Profile) { p.Name = "a b" }), "", `profile name "a b"`},
		{"short validity", mod(func(p *Profile) { p.DefaultValidity = time.Second }), "", "default_validity 1s"},
		{"max below default", mod(func(p *Profile) { p.MaxValidity = time.Hour }), "", "max_validity 1h0m0s"},
		{"backdate too long", mod(func(p *Profile) { p.Backdate = week * 2 }), "", "backdate 336h0m0s"},
		{"no EKU", mod(func(p *Profile) { p.ExtKeyUsage = nil }), "", "ext_key_usages"},
		{"certSign", mod(func(p *Profile) { p.KeyUsage = x509.KeyUsageCertSign }), "", "key_usages"},
		{"no digitalSignature", mod(func(p *Profile) { p.KeyUsage = x509.KeyUsageKeyEncipherment }), "", "must include digitalSignature"},
		{"no key types", mod(func(p *Profile) { p.KeyTypes = nil }), "", "key_types"},
		{"bad key type", mod(func(p *Profile) { p.KeyTypes = []KeyType{"dsa"} }), "", `"dsa"`},
		{"rsa bits", mod(func(p *Profile) { p.RSAMinBits = 1024 }), "", "rsa_min_bits 1024"},
		{"identifiers", mod(func(p *Profile) { p.MaxIdentifiers = 0 }), "", "max_identifiers 0"},
		{"identifier type", mod(func(p *Profile) { p.IdentifierTypes = []acme.IdentifierType{"email"} }), "", `"email"`},
		{"common name", mod(func(p *Profile) { p.CommonName = "upper" }), "", `common_name "upper"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSet(week, tt.configured, tt.def)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSet = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	// A configured profile named like a built-in replaces it.
	short := Builtins(week)[2]
	short.DefaultValidity, short.MaxValidity = 6*time.Hour, 6*time.Hour
	s, err := NewSet(week, []Profile{short}, "")
	if err != nil || s.Get(ShortLived).MaxValidity != 6*time.Hour {
		t.Fatalf("replacing shortlived: %v", err)
	}
}
