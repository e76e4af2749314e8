package certmanager

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	acmeapi "github.com/cert-manager/cert-manager/third_party/forked/acme"
)

const (
	// profileValidity is acmed's --cert-validity in
	// TestCertManagerClientProfile: how long mtls and server certificates
	// live after issuance, unlike shortlived's 24h lifetime.
	profileValidity = 72 * time.Hour
	// builtinBackdate is how far before issuance the built-in profiles put
	// notBefore.
	builtinBackdate = time.Minute
)

// TestCertManagerClientProfile is an Issuer with spec.acme.profile (v1.18+):
// the order controller turns it into acmeapi.WithOrderProfile, which the
// client checks against the directory's meta.profiles and sends as the
// newOrder's "profile". The client's Order type has no Profile field, so
// the profile acmed echoes is read from the recorded answers. Profile
// server gives a serverAuth-only certificate, shortlived a 24h one, no
// profile acmed's default (mtls); with enableDurationFeature the
// Certificate's duration becomes the order's notAfter, honoured within the
// profile's maximum and refused beyond it. An unknown profile never reaches
// acmed: the client refuses it itself (ErrProfileNotInSetOfSupportedProfiles,
// which the order controller treats as not retryable).
func TestCertManagerClientProfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	e := newEnv(t, "--cert-validity", profileValidity.String())
	cl, rec := newClient(t, e.acmed, newAccountKey(t))
	if _, _, _, err := setupIssuer(ctx, cl, email); err != nil {
		t.Fatal(err)
	}
	is := &issuer{e: e, cl: cl, rec: rec}

	dir, err := cl.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mtls", "server", "shortlived", "spiffe"} {
		if !dir.Profiles.Has(name) || dir.Profiles.GetDescription(name) == "" {
			t.Errorf("directory meta.profiles %v: no %s with a description", dir.Profiles, name)
		}
	}

	for _, c := range []struct {
		name, profile string // profile "" is an Issuer without one
		echoed        string
		eku           []x509.ExtKeyUsage
		lifetime      time.Duration // notAfter-notBefore
	}{
		{"server", "server", "server", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, profileValidity + builtinBackdate},
		{"shortlived", "shortlived", "shortlived", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, 24 * time.Hour},
		{"no profile", "", "mtls", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, profileValidity + builtinBackdate},
	} {
		t.Run(c.name, func(t *testing.T) {
			crt := certificate("", []string{strings.ReplaceAll(c.name, " ", "-") + ".profile.cm.example"}, nil)
			var opts []acmeapi.OrderOption
			if c.profile != "" {
				opts = append(opts, acmeapi.WithOrderProfile(c.profile))
			}
			mark := rec.mark()
			o := is.createOrder(ctx, t, crt, opts...)
			sent, echoed := newOrderProfiles(t, rec.since(mark))
			if sent != c.profile || echoed != c.echoed {
				t.Errorf("newOrder sent profile %q, acmed echoed %q; want %q and %q", sent, echoed, c.profile, c.echoed)
			}
			chain, _ := is.complete(ctx, t, o, crt, "http-01")
			if got := orderProfile(t, rec.since(mark), o.URI); got != c.echoed {
				t.Errorf("order %s after finalize carries profile %q, want %q", o.URI, got, c.echoed)
			}
			leaf := parseLeaf(t, chain)
			checkEKU(t, leaf, c.eku)
			if life := leaf.NotAfter.Sub(leaf.NotBefore); life != c.lifetime {
				t.Errorf("certificate lifetime %v (%s to %s), want exactly %v", life,
					leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339), c.lifetime)
			}
		})
	}

	t.Run("duration within shortlived", func(t *testing.T) {
		crt := certificate("", []string{"duration.profile.cm.example"}, nil)
		// createOrder's WithOrderNotAfter(clock.Now().Add(duration)), sent
		// with second precision (RFC 3339).
		notAfter := time.Now().Add(12 * time.Hour).Truncate(time.Second)
		o := is.createOrder(ctx, t, crt, acmeapi.WithOrderProfile("shortlived"), acmeapi.WithOrderNotAfter(notAfter))
		chain, _ := is.complete(ctx, t, o, crt, "http-01")
		leaf := parseLeaf(t, chain)
		if !leaf.NotAfter.Equal(notAfter) {
			t.Errorf("certificate notAfter %s, the order asked for %s", leaf.NotAfter.Format(time.RFC3339), notAfter.Format(time.RFC3339))
		}
		checkEKU(t, leaf, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	})

	t.Run("duration beyond shortlived", func(t *testing.T) {
		ids := identifiers(certificate("", []string{"toolong.profile.cm.example"}, nil))
		_, err := cl.AuthorizeOrder(ctx, ids, acmeapi.WithOrderProfile("shortlived"), acmeapi.WithOrderNotAfter(time.Now().Add(48*time.Hour)))
		ae := acmeError(err)
		if ae == nil || ae.StatusCode != http.StatusBadRequest || !strings.Contains(ae.Detail, "24h") {
			t.Fatalf("order for 48h under shortlived = %v, want a 400 problem whose detail gives the 24h limit", err)
		}
		t.Logf("refused: %s: %s", ae.ProblemType, ae.Detail)
	})

	t.Run("unknown profile", func(t *testing.T) {
		mark := rec.mark()
		ids := identifiers(certificate("", []string{"nosuch.profile.cm.example"}, nil))
		_, err := cl.AuthorizeOrder(ctx, ids, acmeapi.WithOrderProfile("nosuch"))
		if !errors.Is(err, acmeapi.ErrProfileNotInSetOfSupportedProfiles) {
			t.Fatalf("order with profile nosuch = %v, want the client's ErrProfileNotInSetOfSupportedProfiles", err)
		}
		for _, x := range rec.since(mark) {
			if x.Method == http.MethodPost && strings.HasSuffix(x.URL, "/acme/new-order") {
				t.Errorf("the client sent a newOrder for a profile the directory does not list: %s", x)
			}
		}
	})

	checkWireRules(t, rec)
}

// newOrderProfiles finds the one created newOrder in xs and returns the
// profile the client asked for (from the recorded request) and the one
// acmed's order carries.
func newOrderProfiles(t *testing.T, xs []exchange) (sent, echoed string) {
	t.Helper()
	var found []exchange
	for _, x := range xs {
		if x.Method == http.MethodPost && strings.HasSuffix(x.URL, "/acme/new-order") && x.Status == http.StatusCreated {
			found = append(found, x)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want one created newOrder, got %d:\n%s", len(found), dump(xs))
	}
	var req, res struct {
		Profile *string `json:"profile"`
	}
	if err := json.Unmarshal(found[0].Request, &req); err != nil {
		t.Fatalf("newOrder payload %s: %v", found[0].Request, err)
	}
	if err := json.Unmarshal(found[0].Body, &res); err != nil {
		t.Fatalf("newOrder answer %s: %v", found[0].Body, err)
	}
	if req.Profile != nil {
		sent = *req.Profile
		if sent == "" {
			t.Errorf("the client sent an empty profile: %s", found[0].Request)
		}
	}
	if res.Profile == nil {
		t.Fatalf("acmed's order has no profile: %s", found[0].Body)
	}
	return sent, *res.Profile
}

// orderProfile is the profile in the last recorded answer for the order
// at url (the client's GetOrder after finalize).
func orderProfile(t *testing.T, xs []exchange, url string) string {
	t.Helper()
	for _, x := range slices.Backward(xs) {
		if x.URL == url && x.Status == http.StatusOK && len(x.Body) > 0 {
			var o struct{ Profile string }
			if err := json.Unmarshal(x.Body, &o); err != nil {
				t.Fatalf("order %s: %v", x.Body, err)
			}
			return o.Profile
		}
	}
	t.Fatalf("no answer for order %s recorded:\n%s", url, dump(xs))
	return ""
}

func parseLeaf(t *testing.T, chain [][]byte) *x509.Certificate {
	t.Helper()
	if len(chain) == 0 {
		t.Fatal("empty chain")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

// checkEKU asserts that leaf has exactly want, in order serverAuth,
// clientAuth.
func checkEKU(t *testing.T, leaf *x509.Certificate, want []x509.ExtKeyUsage) {
	t.Helper()
	got := slices.Sorted(slices.Values(leaf.ExtKeyUsage))
	if !slices.Equal(got, want) || len(leaf.UnknownExtKeyUsage) != 0 {
		t.Errorf("certificate extended key usages %v (unknown %v), want %v (1 serverAuth, 2 clientAuth)", got, leaf.UnknownExtKeyUsage, want)
	}
}
