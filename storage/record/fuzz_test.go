package record_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

// FuzzUnmarshal: no input makes Unmarshal panic, and whatever decodes, as
// any of the record types, re-encodes to bytes that decode to the same
// record and encode the same again. A binary input must decode to exactly
// what its re-encoding does; a JSON one may differ in what the binary form
// drops (time locations, empty against nil).
func FuzzUnmarshal(f *testing.F) {
	for _, tc := range records() {
		raw, err := record.Marshal(tc.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		legacy, err := json.Marshal(tc.v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(legacy)
	}
	f.Fuzz(checkReencodes)
}

func checkReencodes(t *testing.T, raw []byte) {
	t.Helper()
	binary := len(raw) > 0 && raw[0] != '{'
	for _, v := range []any{new(acme.Account), new(acme.Order), new(acme.Authorization), new(acme.Certificate)} {
		if record.Unmarshal(raw, v) != nil {
			continue
		}
		enc, err := record.Marshal(v)
		if err != nil {
			t.Fatalf("%T decoded from %x does not encode: %v", v, raw, err)
		}
		again := fresh(v)
		if err := record.Unmarshal(enc, again); err != nil {
			t.Fatalf("%T re-encoded from %x does not decode: %v\n%x", v, raw, err, enc)
		}
		if binary && !reflect.DeepEqual(again, v) {
			t.Fatalf("%T from %x decodes as\n %+v\nbut its re-encoding as\n %+v", v, raw, v, again)
		}
		if enc2, err := record.Marshal(again); err != nil || !bytes.Equal(enc2, enc) {
			t.Fatalf("%T from %x: encoding is not stable (%v):\n%x\n%x", v, raw, err, enc, enc2)
		}
	}
}
