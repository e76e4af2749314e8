package record_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := record.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%T): %v", v, err)
	}
	return raw
}

func mustUnmarshal(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := record.Unmarshal(raw, v); err != nil {
		t.Fatalf("Unmarshal(%T): %v", v, err)
	}
}

// TestRoundTrip: every record decodes to what was encoded, and the
// encoding is the binary one, not JSON.
func TestRoundTrip(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustMarshal(t, tc.v)
			want := byte(1)
			switch tc.v.(type) {
			case *acme.Authorization:
				want = 2 // its challenges carry validation records
			case *acme.Account:
				want = 2 // it carries its EAB key
			case *acme.Order:
				want = 4 // it carries its profile and renewal fields
			case *acme.Certificate:
				want = 4 // its profile and renewal fields
				if tc.v.(*acme.Certificate).Issuer != "" {
					want = 5 // and its issuer
				}
			}
			if raw[0] != want {
				t.Fatalf("first byte %#x, want the version %d", raw[0], want)
			}
			got := fresh(tc.v)
			mustUnmarshal(t, raw, got)
			if !reflect.DeepEqual(got, tc.v) {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tc.v)
			}
		})
	}
}

// TestDeterministic: the Redis store compares a held copy's encoding with
// the stored bytes, so encoding must give the same bytes every time,
// including for a record that was decoded from them.
func TestDeterministic(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			first, second := mustMarshal(t, tc.v), mustMarshal(t, tc.v)
			if !bytes.Equal(first, second) {
				t.Fatalf("two encodings differ:\n%x\n%x", first, second)
			}
			decoded := fresh(tc.v)
			mustUnmarshal(t, first, decoded)
			if again := mustMarshal(t, decoded); !bytes.Equal(again, first) {
				t.Fatalf("re-encoding a decoded record differs:\n%x\n%x", again, first)
			}
		})
	}
}

// TestTimeLocation: a time's location is not part of the record; a held
// copy with local times must encode as the stored one does.
func TestTimeLocation(t *testing.T) {
	utc := fullOrder()
	local := fullOrder()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	local.Expires, local.CreatedAt = local.Expires.In(zone), local.CreatedAt.In(zone)
	local.NotBefore = time.Now() // carries a monotonic reading
	utc.NotBefore = local.NotBefore.Round(0).UTC()
	if a, b := mustMarshal(t, utc), mustMarshal(t, local); !bytes.Equal(a, b) {
		t.Fatalf("same instants in other locations encode differently:\n%x\n%x", a, b)
	}
}

// TestEmptySlices: nil and empty encode alike and decode as nil.
func TestEmptySlices(t *testing.T) {
	empty := &acme.Account{Contact: []string{}, Key: []byte{}}
	if a, b := mustMarshal(t, empty), mustMarshal(t, &acme.Account{}); !bytes.Equal(a, b) {
		t.Fatalf("empty and nil slices encode differently:\n%x\n%x", a, b)
	}
	var got acme.Account
	mustUnmarshal(t, mustMarshal(t, empty), &got)
	if got.Contact != nil || got.Key != nil {
		t.Fatalf("decoded %#v, want nil slices", got)
	}
}

// TestDecodeCopies: bbolt reuses the bytes a record was read from once its
// transaction ends, so nothing decoded may point into them.
func TestDecodeCopies(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustMarshal(t, tc.v)
			got := fresh(tc.v)
			mustUnmarshal(t, raw, got)
			for i := range raw {
				raw[i] = 0xa5
			}
			if !reflect.DeepEqual(got, tc.v) {
				t.Fatalf("decoded record changed with its input:\n got  %+v\n want %+v", got, tc.v)
			}
		})
	}
}

// TestLegacyJSON: records an earlier acmed stored as JSON still decode,
// and re-encode in the binary form.
func TestLegacyJSON(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			legacy, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got := fresh(tc.v)
			mustUnmarshal(t, legacy, got)
			if a, b := mustMarshal(t, got), mustMarshal(t, tc.v); !bytes.Equal(a, b) {
				t.Fatalf("JSON record decoded to %+v, want %+v", got, tc.v)
			}
		})
	}
	t.Run("offset times", func(t *testing.T) {
		raw := []byte(`{"ID":"a1","Status":"valid","Contact":["mailto:a@example.com"],` +
			`"Key":"eyJrdHkiOiJFQyJ9","KeyThumbprint":"k","TermsAgreed":true,"CreatedAt":"2026-03-01T14:30:45.5+02:00"}`)
		var got acme.Account
		mustUnmarshal(t, raw, &got)
		want := &acme.Account{ID: "a1", Status: acme.StatusValid, Contact: []string{"mailto:a@example.com"},
			Key: []byte(`{"kty":"EC"}`), KeyThumbprint: "k", TermsAgreed: true,
			CreatedAt: time.Date(2026, 3, 1, 12, 30, 45, 5e8, time.UTC)}
		if a, b := mustMarshal(t, &got), mustMarshal(t, want); !bytes.Equal(a, b) {
			t.Fatalf("decoded %+v, want %+v", got, want)
		}
	})
}

// TestOtherTypes go through encoding/json, both ways.
func TestOtherTypes(t *testing.T) {
	type job struct{ OrderID string }
	raw := mustMarshal(t, &job{OrderID: "o1"})
	if string(raw) != `{"OrderID":"o1"}` {
		t.Fatalf("Marshal(job) = %s, want its JSON", raw)
	}
	var got job
	mustUnmarshal(t, raw, &got)
	if got.OrderID != "o1" {
		t.Fatalf("Unmarshal(job) = %+v", got)
	}
	raw = mustMarshal(t, acme.Account{ID: "by value"})
	if raw[0] != '{' {
		t.Fatalf("an Account by value encodes as %q, want JSON", raw)
	}
}

func TestNilRecord(t *testing.T) {
	for _, v := range []any{(*acme.Account)(nil), (*acme.Order)(nil), (*acme.Authorization)(nil), (*acme.Certificate)(nil)} {
		if _, err := record.Marshal(v); err == nil {
			t.Errorf("Marshal(%T nil) succeeded", v)
		}
		if err := record.Unmarshal([]byte{1}, v); err == nil {
			t.Errorf("Unmarshal into %T nil succeeded", v)
		}
	}
}

// TestAuthorizationVersion1 decodes an authorization an acmed before
// validation records wrote (version 1, failedWildcardAuthz's bytes then),
// and an update compares with its re-encoding as version 2, not with
// those bytes.
func TestAuthorizationVersion1(t *testing.T) {
	raw, err := hex.DecodeString("0120616363743031323334353637383961622e617574687a30313233343536373839106163637430313233343536373839616203646e7310617070732e6578616d706c652e636f6d0107696e76616c696401eaafeb9a0d969aef3a010b6368616c6c646e732d303106646e732d30312b7474747474747474747474747474747474747474747474747474747474747474747474747474747474747407696e76616c696401eac5a19a0d959aef3a01eac5a19a0d949aef3aec027b2274797065223a2275726e3a696574663a706172616d733a61636d653a6572726f723a636f6d706f756e64222c2264657461696c223a22736f6d65206964656e74696669657273206661696c6564205c75303033635c75303032365c7530303365222c22737461747573223a3430332c2273756270726f626c656d73223a5b7b2274797065223a2275726e3a696574663a706172616d733a61636d653a6572726f723a756e617574686f72697a6564222c2264657461696c223a226e6f20545854207265636f7264222c22737461747573223a3430332c226964656e746966696572223a7b2274797065223a22646e73222c2276616c7565223a22617070732e6578616d706c652e636f6d227d7d2c7b2274797065223a2275726e3a696574663a706172616d733a61636d653a6572726f723a6261645369676e6174757265416c676f726974686d222c22616c676f726974686d73223a5b224553323536222c225253323536225d7d5d7d")
	if err != nil {
		t.Fatal(err)
	}
	got := new(acme.Authorization)
	mustUnmarshal(t, raw, got)
	if want := failedWildcardAuthz(); !reflect.DeepEqual(got, want) {
		t.Fatalf("version 1 decoded to\n %+v\nwant %+v", got, want)
	}
	base, err := record.Baseline(raw, got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(base, mustMarshal(t, got)) || base[0] != 2 {
		t.Fatalf("Baseline of a version 1 authorization is not its version 2 encoding: %x", base[:1])
	}
}

// TestAccountVersion1 decodes an account an acmed before external account
// binding wrote (version 1: no EABKID), and an update compares with its
// re-encoding as version 2.
func TestAccountVersion1(t *testing.T) {
	acct := fullAccount()
	acct.EABKID = ""
	v2 := mustMarshal(t, acct)
	v1 := append([]byte{1}, v2[1:len(v2)-1]...) // version 1 had no EABKID
	got := new(acme.Account)
	mustUnmarshal(t, v1, got)
	if !reflect.DeepEqual(got, acct) {
		t.Fatalf("version 1 decoded to\n %+v\nwant %+v", got, acct)
	}
	base, err := record.Baseline(v1, got)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(base, v2) {
		t.Fatalf("Baseline of a version 1 account is not its version 2 encoding: %x", base)
	}
}

// TestCertificateIssuerVersion: a certificate with no issuer (the CA's
// first intermediate's) is written in version 4, which an acmed from
// before rotation reads, one with an issuer in version 5; the issuer is
// the only difference, and both round-trip.
func TestCertificateIssuerVersion(t *testing.T) {
	cert := fullCertificate()
	v5 := mustMarshal(t, cert)
	cert.Issuer = ""
	v4 := mustMarshal(t, cert)
	if v4[0] != 4 || v5[0] != 5 {
		t.Fatalf("versions %d and %d, want 4 without an issuer and 5 with one", v4[0], v5[0])
	}
	if !bytes.Equal(v4[1:], v5[1:len(v4)]) {
		t.Fatal("version 5 is not version 4 followed by the issuer")
	}
	got := new(acme.Certificate)
	mustUnmarshal(t, v4, got)
	if !reflect.DeepEqual(got, cert) {
		t.Fatalf("version 4 decoded to\n %+v\nwant %+v", got, cert)
	}
	if base, err := record.Baseline(v4, got); err != nil || !bytes.Equal(base, v4) {
		t.Fatalf("Baseline of a version 4 certificate with no issuer: %x, %v; want the record itself", base, err)
	}
}

// TestVersion1OrderAndCertificate decodes an order and a certificate an
// acmed before profiles wrote (version 1), and an update compares with
// their re-encoding in their newest version.
func TestVersion1OrderAndCertificate(t *testing.T) {
	order := fullOrder()
	order.Profile, order.SPIFFEID, order.Replaces, order.EABKeyName = "", "", "", ""
	cert := fullCertificate()
	cert.Profile, cert.NotBefore = "", time.Time{}
	cert.EABKeyName, cert.Replaces, cert.ReplacedBy, cert.CampaignID = "", "", "", ""
	cert.RenewAfter, cert.RenewBefore = time.Time{}, time.Time{}
	cert.Issuer = ""
	for _, tc := range []struct {
		v     any
		strip int // bytes versions 3 and 4 added: empty strings and zero times, one byte each
	}{{order, 4}, {cert, 8}} {
		v3 := mustMarshal(t, tc.v)
		v1 := append([]byte{1}, v3[1:len(v3)-tc.strip]...)
		got := fresh(tc.v)
		mustUnmarshal(t, v1, got)
		if !reflect.DeepEqual(got, tc.v) {
			t.Fatalf("version 1 decoded to\n %+v\nwant %+v", got, tc.v)
		}
		base, err := record.Baseline(v1, got)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(base, v3) {
			t.Fatalf("Baseline of a version 1 %T is not its newest encoding: %x", tc.v, base)
		}
	}
}
