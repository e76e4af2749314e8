package record_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

// zeroAccount is the encoding of acme.Account{}: the version, then ID,
// Status, Contact, Key, KeyThumbprint, TermsAgreed and CreatedAt, each
// empty in one byte.
var zeroAccount = []byte{1, 0, 0, 0, 0, 0, 0, 0}

// account returns zeroAccount with the bytes from field index i on
// replaced by tail (1 is ID, 7 CreatedAt).
func account(i int, tail ...byte) []byte {
	return append(bytes.Clone(zeroAccount[:i]), tail...)
}

// TestCorrupt: bad input is an error naming what was wrong, never a panic
// or a record.
func TestCorrupt(t *testing.T) {
	// Accounts are written as version 2 (with EABKID); the cases below
	// corrupt a version 1 record, which must still decode.
	if want := append([]byte{2}, zeroAccount[1:]...); !bytes.Equal(mustMarshal(t, &acme.Account{}), append(want, 0)) {
		t.Fatalf("acme.Account{} encodes as %x, want %x", mustMarshal(t, &acme.Account{}), append(want, 0))
	}
	withProblem := mustMarshal(t, &acme.Authorization{Challenges: []acme.Challenge{{Error: &acme.Problem{Type: "x"}}}})
	badProblem := bytes.Replace(withProblem, []byte(`{"type":"x"}`), []byte(`{"type":123}`), 1)
	for _, tc := range []struct {
		name string
		raw  []byte
		into any
		want string
	}{
		{"empty", nil, new(acme.Order), "record: decode acme.Order: empty"},
		{"version 0", []byte{0}, new(acme.Order), "unknown format version 0"},
		{"version 2", []byte{2, 0, 0}, new(acme.Certificate), "unknown format version 2"},
		{"version 5", []byte{5, 0, 0}, new(acme.Order), "unknown format version 5"},
		{"broken JSON", []byte(`{"ID":`), new(acme.Account), "decode acme.Account from JSON: unexpected end"},
		{"version only", []byte{1}, new(acme.Account), "ID: truncated varint"},
		{"string past the end", account(1, 5, 'a', 'b'), new(acme.Account), "ID: length 5 exceeds the 2 bytes left"},
		{"non-minimal length", account(1, 0x80, 0x00), new(acme.Account), "ID: varint not in its shortest form"},
		{"length overflows", account(1, bytes.Repeat([]byte{0xff}, 11)...), new(acme.Account), "ID: varint overflows 64 bits"},
		{"count past the end", account(3, 0xff, 0xff, 0xff, 0xff, 0x0f), new(acme.Account), "Contact: count 4294967295 cannot fit in the 0 bytes left"},
		{"element past the end", account(3, 2, 1, 'a', 9), new(acme.Account), "Contact[1]: length 9 exceeds the 0 bytes left"},
		{"bool 2", account(6, 2, 0), new(acme.Account), "TermsAgreed: bool byte 2, want 0 or 1"},
		{"time flag 2", account(7, 2), new(acme.Account), "CreatedAt: time flag 2, want 0 or 1"},
		{"time truncated", account(7, 1, 0x80), new(acme.Account), "CreatedAt: truncated varint"},
		{"nanoseconds over a second", account(7, binary.AppendUvarint([]byte{1, 2}, 1e9)...), new(acme.Account), "CreatedAt: 1000000000 nanoseconds"},
		{"zero time in long form", account(7, append(binary.AppendVarint([]byte{1}, -62135596800), 0)...), new(acme.Account), "CreatedAt: the zero time in long form"},
		{"trailing byte", account(8, 0), new(acme.Account), "1 trailing bytes"},
		{"problem not JSON", badProblem, new(acme.Authorization), "Challenges[0]: Error: json: cannot unmarshal number"},
		{"challenge count past the end", []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0}, new(acme.Authorization),
			"Challenges: count 2 cannot fit in the 7 bytes left"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := reflect.ValueOf(tc.into).Elem().Interface()
			err := record.Unmarshal(tc.raw, tc.into)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Unmarshal(%x) = %v, want an error containing %q", tc.raw, err, tc.want)
			}
			if after := reflect.ValueOf(tc.into).Elem().Interface(); !reflect.DeepEqual(after, before) {
				t.Fatalf("a failed Unmarshal changed its target to %+v", after)
			}
		})
	}
}

// TestProblemErrorWraps: a problem that is not JSON keeps the JSON error.
func TestProblemErrorWraps(t *testing.T) {
	raw := mustMarshal(t, &acme.Order{Error: &acme.Problem{Type: "x"}})
	raw = bytes.Replace(raw, []byte(`{"type":"x"}`), []byte(`{"type":123}`), 1)
	var typeErr *json.UnmarshalTypeError
	if err := record.Unmarshal(raw, new(acme.Order)); !errors.As(err, &typeErr) {
		t.Fatalf("Unmarshal = %v, want it to wrap a *json.UnmarshalTypeError", err)
	}
}

// TestTruncated: every proper prefix of a valid record is an error.
func TestTruncated(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustMarshal(t, tc.v)
			for n := range len(raw) {
				if err := record.Unmarshal(raw[:n], fresh(tc.v)); err == nil {
					t.Fatalf("the first %d of %d bytes decoded", n, len(raw))
				}
			}
		})
	}
}

// TestBitFlips: no single corrupted byte makes the decoder panic, and
// whatever still decodes has the fuzz target's property.
func TestBitFlips(t *testing.T) {
	for _, tc := range records() {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustMarshal(t, tc.v)
			for i := 1; i < len(raw); i++ {
				for _, x := range []byte{0x01, 0x80, 0xff} {
					bad := bytes.Clone(raw)
					bad[i] ^= x
					checkReencodes(t, bad)
				}
			}
		})
	}
}
