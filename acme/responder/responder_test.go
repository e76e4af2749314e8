package responder_test

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/acmed/acmed/acme/responder"
	"github.com/acmed/acmed/ca"
)

// TestStatuses asks about a good certificate, revoked ones with and
// without a reason, and a serial the CA never issued, by GET and by POST,
// and checks each answer against the issuer as a relying party would.
func TestStatuses(t *testing.T) {
	e := newEnv(t)
	good := e.issue("good.example")
	compromised := e.issue("compromised.example")
	unspecified := e.issue("unspecified.example")
	superseded := e.issue("superseded.example")
	e.revoke(compromised, ocsp.KeyCompromise)
	e.revoke(unspecified, ocsp.Unspecified)
	e.revoke(superseded, ocsp.Superseded)
	revokedAt := e.clock.Now()
	// A serial of this issuer's that it never used.
	never := &x509.Certificate{SerialNumber: new(big.Int).Add(good.cert.SerialNumber, big.NewInt(1))}

	cases := []struct {
		name   string
		cert   *x509.Certificate
		status int
		reason int
	}{
		{"good", good.cert, ocsp.Good, 0},
		{"revoked keyCompromise", compromised.cert, ocsp.Revoked, ocsp.KeyCompromise},
		{"revoked unspecified", unspecified.cert, ocsp.Revoked, ocsp.Unspecified},
		{"revoked superseded", superseded.cert, ocsp.Revoked, ocsp.Superseded},
		{"unknown", never, ocsp.Unknown, 0},
	}
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		for _, tc := range cases {
			t.Run(method+"/"+tc.name, func(t *testing.T) {
				der := request(t, tc.cert, e.ca.Intermediate(), crypto.SHA1)
				r := e.post(der)
				if method == http.MethodGet {
					r = e.get(der)
				}
				resp := e.parse(r, tc.cert)
				if resp.Status != tc.status {
					t.Fatalf("status %d, want %d", resp.Status, tc.status)
				}
				now := e.clock.Now()
				if !resp.ThisUpdate.Equal(now) || !resp.NextUpdate.Equal(now.Add(responder.DefaultValidity)) {
					t.Errorf("thisUpdate %s nextUpdate %s, want %s and %s later", resp.ThisUpdate, resp.NextUpdate, now, responder.DefaultValidity)
				}
				if resp.Certificate != nil || !bytes.Equal(resp.RawResponderName, e.ca.Intermediate().RawSubject) {
					t.Errorf("responder is not the issuer itself (certificate %v)", resp.Certificate)
				}
				if tc.status == ocsp.Revoked && (resp.RevocationReason != tc.reason || !resp.RevokedAt.Equal(revokedAt)) {
					t.Errorf("revoked at %s for reason %d, want %s and %d", resp.RevokedAt, resp.RevocationReason, revokedAt, tc.reason)
				}
				cc := r.header.Get("Cache-Control")
				switch method {
				case http.MethodGet:
					want := "public, no-transform, max-age=" + strconv.Itoa(int(responder.DefaultValidity/time.Second))
					if cc != want || r.header.Get("Expires") != resp.NextUpdate.Format(http.TimeFormat) {
						t.Errorf("Cache-Control %q Expires %q, want %q and nextUpdate", cc, r.header.Get("Expires"), want)
					}
				case http.MethodPost:
					if cc != "" {
						t.Errorf("POST answer has Cache-Control %q", cc)
					}
				}
			})
		}
	}
}

// TestRevocationSeenAtOnce: a revocation changes the very next answer,
// though the good answer before it would otherwise be reused.
func TestRevocationSeenAtOnce(t *testing.T) {
	e := newEnv(t)
	l := e.issue("soon-revoked.example")
	der := request(t, l.cert, e.ca.Intermediate(), crypto.SHA1)
	if got := e.parse(e.get(der), l.cert).Status; got != ocsp.Good {
		t.Fatalf("status %d before revocation, want good", got)
	}
	e.revoke(l, ocsp.CessationOfOperation)
	resp := e.parse(e.get(der), l.cert)
	if resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.CessationOfOperation {
		t.Fatalf("status %d reason %d after revocation, want revoked, cessationOfOperation", resp.Status, resp.RevocationReason)
	}
}

// TestReuse: an unchanged status is answered with the same signed
// response within Reuse, and a fresh one after it.
func TestReuse(t *testing.T) {
	e := newEnv(t)
	l := e.issue("reused.example")
	der := request(t, l.cert, e.ca.Intermediate(), crypto.SHA1)
	first := e.post(der).body
	e.clock.Add(responder.DefaultReuse - time.Second)
	if again := e.post(der).body; !bytes.Equal(again, first) {
		t.Fatal("a second answer within Reuse was signed again")
	}
	e.clock.Add(time.Second)
	later := e.parse(e.post(der), l.cert)
	if bytes.Equal(later.Raw, first) || !later.ThisUpdate.Equal(e.clock.Now()) {
		t.Fatalf("answer after Reuse has thisUpdate %s, want a fresh one at %s", later.ThisUpdate, e.clock.Now())
	}
}

// TestRequestHashes: a request may name the issuer with any hash
// x/crypto/ocsp knows, and is answered under the same one.
func TestRequestHashes(t *testing.T) {
	e := newEnv(t)
	l := e.issue("hashes.example")
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		t.Run(h.String(), func(t *testing.T) {
			resp := e.parse(e.post(request(t, l.cert, e.ca.Intermediate(), h)), l.cert)
			if resp.Status != ocsp.Good || resp.IssuerHash != h {
				t.Fatalf("status %d under %s, want good under %s", resp.Status, resp.IssuerHash, h)
			}
		})
	}
}

// TestBadRequests: what is not an OCSP request gets malformedRequest, a
// request about another issuer's certificate unauthorized; neither is an
// HTTP error, and neither is cached.
func TestBadRequests(t *testing.T) {
	e := newEnv(t)
	l := e.issue("bad.example")
	other, _ := newOtherCA(t)
	otherReq := request(t, l.cert, other.Intermediate(), crypto.SHA1)
	good := request(t, l.cert, e.ca.Intermediate(), crypto.SHA1)

	cases := []struct {
		name string
		do   func() reply
		want ocsp.ResponseStatus
	}{
		{"POST garbage", func() reply { return e.post([]byte("not DER")) }, ocsp.Malformed},
		{"POST empty", func() reply { return e.post(nil) }, ocsp.Malformed},
		{"POST truncated", func() reply { return e.post(good[:len(good)-3]) }, ocsp.Malformed},
		{"POST trailing data", func() reply { return e.post(append(bytes.Clone(good), 0)) }, ocsp.Malformed},
		{"POST too large", func() reply { return e.post(bytes.Repeat([]byte{0x30}, 64<<10)) }, ocsp.Malformed},
		{"GET no request", func() reply { return e.getPath("") }, ocsp.Malformed},
		{"GET empty request", func() reply { return e.getPath("/") }, ocsp.Malformed},
		{"GET not base64", func() reply { return e.getPath("/%21%21%21") }, ocsp.Malformed},
		{"GET base64 of garbage", func() reply { return e.getPath("/" + base64.StdEncoding.EncodeToString([]byte("junk"))) }, ocsp.Malformed},
		{"POST another issuer", func() reply { return e.post(otherReq) }, ocsp.Unauthorized},
		{"GET another issuer", func() reply { return e.get(otherReq) }, ocsp.Unauthorized},
		{"POST issuer name of ours, key of another", func() reply { return e.post(mixIssuer(t, good, otherReq, false)) }, ocsp.Unauthorized},
		{"POST issuer key of ours, name of another", func() reply { return e.post(mixIssuer(t, good, otherReq, true)) }, ocsp.Unauthorized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.do()
			if got := e.errorStatus(r); got != tc.want {
				t.Fatalf("OCSP status %s, want %s", got, tc.want)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", cc)
			}
		})
	}
}

// mixIssuer is good with one of its issuer hashes taken from other's:
// the name hash if name, else the key hash.
func mixIssuer(t *testing.T, good, other []byte, keepKey bool) []byte {
	t.Helper()
	g, err := ocsp.ParseRequest(good)
	if err != nil {
		t.Fatal(err)
	}
	o, err := ocsp.ParseRequest(other)
	if err != nil {
		t.Fatal(err)
	}
	if keepKey {
		g.IssuerNameHash = o.IssuerNameHash
	} else {
		g.IssuerKeyHash = o.IssuerKeyHash
	}
	der, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newOtherCA(t *testing.T) (*ca.Local, string) {
	t.Helper()
	dir := t.TempDir()
	if err := ca.Init(dir, ca.Config{}); err != nil {
		t.Fatal(err)
	}
	l, err := ca.Load(dir, ca.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return l, dir
}

// TestGETEncodings: the base64 in a GET may be percent-encoded or not, and
// may hold "//", which a router would clean away with a redirect were the
// responder not routed first.
func TestGETEncodings(t *testing.T) {
	e := newEnv(t)
	l := e.issue("encodings.example")
	// Deterministically find a serial whose request's base64 holds "//".
	var slashes string
	for n := int64(1); slashes == ""; n++ {
		c := &x509.Certificate{SerialNumber: big.NewInt(n)}
		if b := base64.StdEncoding.EncodeToString(request(t, c, e.ca.Intermediate(), crypto.SHA1)); strings.Contains(b, "//") {
			slashes = b
		}
	}
	b64 := base64.StdEncoding.EncodeToString(request(t, l.cert, e.ca.Intermediate(), crypto.SHA1))
	cases := []struct {
		name, path string
		want       int
	}{
		{"plain", "/" + b64, ocsp.Good},
		{"percent-encoded", "/" + url.QueryEscape(b64), ocsp.Good},
		{"unpadded", "/" + strings.TrimRight(b64, "="), ocsp.Good},
		{"URL-safe", "/" + base64.RawURLEncoding.EncodeToString(request(t, l.cert, e.ca.Intermediate(), crypto.SHA1)), ocsp.Good},
		{"double slash", "/" + slashes, ocsp.Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.getPath(tc.path)
			if r.status != http.StatusOK {
				t.Fatalf("HTTP %d: %s", r.status, r.body)
			}
			resp, err := ocsp.ParseResponse(r.body, e.ca.Intermediate())
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.want {
				t.Fatalf("status %d, want %d", resp.Status, tc.want)
			}
		})
	}
}

// TestMethods: other methods are refused with 405 and what is allowed;
// other paths are not the responder's.
func TestMethods(t *testing.T) {
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodPut, e.url, strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD, POST" {
		t.Fatalf("PUT: HTTP %d Allow %q, want 405 GET, HEAD, POST", resp.StatusCode, resp.Header.Get("Allow"))
	}
	resp, err = http.Get(strings.TrimSuffix(e.url, responder.Path) + "/ocspx")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Fatalf("/ocspx: HTTP %d, want it left to the next handler", resp.StatusCode)
	}
}

// TestDelegated: with a delegated responder the answer carries the
// responder certificate, which the issuer signed for OCSP signing only.
func TestDelegated(t *testing.T) {
	var delegate *ca.DelegatedOCSP
	e := newEnv(t, func(c *responder.Config, l *ca.Local) {
		d, err := l.DelegatedOCSP(responder.DefaultValidity)
		if err != nil {
			t.Fatal(err)
		}
		c.Signer, delegate = d, d
	})
	l := e.issue("delegated.example")
	e.revoke(l, ocsp.AffiliationChanged)
	resp := e.parse(e.get(request(t, l.cert, e.ca.Intermediate(), crypto.SHA256)), l.cert)
	if resp.Status != ocsp.Revoked || resp.RevocationReason != ocsp.AffiliationChanged {
		t.Fatalf("status %d reason %d, want revoked, affiliationChanged", resp.Status, resp.RevocationReason)
	}
	current, err := delegate.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if resp.Certificate == nil || !resp.Certificate.Equal(current) || !bytes.Equal(resp.RawResponderName, current.RawSubject) {
		t.Fatal("the answer does not carry and name the responder certificate")
	}
	if err := resp.Certificate.CheckSignatureFrom(e.ca.Intermediate()); err != nil {
		t.Fatalf("responder certificate not signed by the issuer: %v", err)
	}
	if resp.NextUpdate.After(resp.Certificate.NotAfter) {
		t.Fatalf("answer valid until %s, its signer only until %s", resp.NextUpdate, resp.Certificate.NotAfter)
	}
}
