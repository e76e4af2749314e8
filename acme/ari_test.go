package acme

import (
	"encoding/asn1"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"
)

func TestSuggestedWindow(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := nb.Add(10 * time.Hour)
	day := func(c Certificate) Certificate {
		c.NotBefore, c.NotAfter = nb, nb.Add(24*time.Hour)
		return c
	}
	tests := []struct {
		name       string
		cert       Certificate
		now        time.Time
		start, end time.Time
	}{
		{"default: the last third, less its last sixth", day(Certificate{}), now,
			nb.Add(16 * time.Hour), nb.Add(20 * time.Hour)},
		{"7 days", Certificate{NotBefore: nb, NotAfter: nb.Add(7 * 24 * time.Hour)}, now,
			nb.Add(112 * time.Hour), nb.Add(140 * time.Hour)},
		{"a campaign's window", day(Certificate{RenewAfter: now.Add(time.Second), RenewBefore: now.Add(time.Minute), CampaignID: "c1"}), now,
			now.Add(time.Second), now.Add(time.Minute)},
		{"revoked: an hour up to now, renew at once", day(Certificate{Revoked: true}), now,
			now.Add(-time.Hour), now},
		{"revoked soon after notBefore: starts after it", day(Certificate{Revoked: true}), nb.Add(10 * time.Minute),
			nb.Add(time.Second), nb.Add(10 * time.Minute)},
		{"revoked at once: still a usable window", day(Certificate{Revoked: true}), nb,
			nb.Add(time.Second), nb.Add(3 * time.Second)},
		{"a campaign window at notBefore is moved after it", day(Certificate{RenewAfter: nb, RenewBefore: nb.Add(time.Minute), CampaignID: "c1"}), now,
			nb.Add(time.Second), nb.Add(time.Minute)},
		{"sub-second times are cut to RFC 3339's seconds", Certificate{NotBefore: nb.Add(300 * time.Millisecond), NotAfter: nb.Add(6*time.Hour + 300*time.Millisecond)}, now,
			nb.Add(4 * time.Hour), nb.Add(5 * time.Hour)},
		{"a few seconds' certificate: the window is 2 s", Certificate{NotBefore: nb, NotAfter: nb.Add(3 * time.Second)}, now,
			nb.Add(2 * time.Second), nb.Add(4 * time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start, end := tt.cert.SuggestedWindow(tt.now)
			if !start.Equal(tt.start) || !end.Equal(tt.end) {
				t.Fatalf("window %s .. %s, want %s .. %s", start, end, tt.start, tt.end)
			}
			if !start.After(tt.cert.NotBefore) || end.Sub(start) < 2*time.Second {
				t.Fatalf("window %s .. %s: must start after notBefore %s and last 2 s", start, end, tt.cert.NotBefore)
			}
		})
	}
}

func TestARIRetryAfter(t *testing.T) {
	nb := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	now := nb.Add(time.Hour)
	life := func(d time.Duration, c Certificate) Certificate {
		c.NotBefore, c.NotAfter = nb, nb.Add(d)
		return c
	}
	tests := []struct {
		name string
		cert Certificate
		want time.Duration
	}{
		{"24 hours: about every half hour", life(24*time.Hour, Certificate{}), 24 * time.Hour / 50},
		{"7 days: about every 3.4 hours", life(7*24*time.Hour, Certificate{}), 7 * 24 * time.Hour / 50},
		{"90 days: every 6 hours at most", life(90*24*time.Hour, Certificate{}), 6 * time.Hour},
		{"1 hour: every 72 s", life(time.Hour, Certificate{}), 72 * time.Second},
		{"30 minutes: every minute at least", life(30*time.Minute, Certificate{}), time.Minute},
		{"in a campaign: every minute", life(7*24*time.Hour, Certificate{CampaignID: "c1"}), time.Minute},
		{"revoked: every minute", life(7*24*time.Hour, Certificate{Revoked: true}), time.Minute},
		{"in a campaign, replaced: as usual", life(7*24*time.Hour, Certificate{CampaignID: "c1", ReplacedBy: "0a"}), 7 * 24 * time.Hour / 50},
		{"in a campaign, expired: as usual", Certificate{NotBefore: nb.Add(-7 * 24 * time.Hour), NotAfter: nb, CampaignID: "c1"}, 7 * 24 * time.Hour / 50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cert.ARIRetryAfter(now); got != tt.want {
				t.Fatalf("ARIRetryAfter = %v, want %v", got, tt.want)
			}
		})
	}
}

// CertID must be what clients compute: lego and acmez take the DER
// encoding of the serial INTEGER less its tag and length.
func TestCertIDMatchesClients(t *testing.T) {
	aki := []byte{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4}
	for _, hexSerial := range []string{
		"01", "7f", "80", "ff", "0100", "00ff", "0a1b2c", "87654321",
		strings.Repeat("ab", 16), "0" + strings.Repeat("7", 31),
	} {
		n, _ := new(big.Int).SetString(hexSerial, 16)
		der, err := asn1.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		want := base64.RawURLEncoding.EncodeToString(aki) + "." + base64.RawURLEncoding.EncodeToString(der[2:])
		canonical := SerialHex(n)
		if got := CertID(aki, canonical); got != want {
			t.Errorf("serial %s: CertID %q, want %q", hexSerial, got, want)
		}
		gotAKI, gotSerial, p := ParseCertID(want)
		if p != nil || string(gotAKI) != string(aki) || gotSerial != canonical {
			t.Errorf("ParseCertID(%q) = %x, %q, %v; want %x, %q", want, gotAKI, gotSerial, p, aki, canonical)
		}
		if norm, ok := NormalizeSerial(strings.ToUpper(LegacySerial(canonical))); !ok || norm != canonical {
			t.Errorf("NormalizeSerial of the legacy form of %s = %q, %v", canonical, norm, ok)
		}
	}
}

func TestParseCertIDRefuses(t *testing.T) {
	for _, id := range []string{
		"", ".", "abc", "abc.", ".AQ", "a.b.c", "ab!.AQ", "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AQ=", // padding
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA", // negative
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AA", // zero
		"aYhba4dGQEHhs3uEe6CuLN4ByNQ." + base64.RawURLEncoding.EncodeToString(make([]byte, 21)),
	} {
		if _, _, p := ParseCertID(id); p == nil || p.Type != ErrMalformed.Type || p.Status != 400 {
			t.Errorf("ParseCertID(%q) = %v, want malformed 400", id, p)
		}
	}
}
