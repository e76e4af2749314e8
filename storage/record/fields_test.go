package record

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/acmed/acmed/acme"
)

// TestEveryFieldKept fills every field of each record type, nested ones
// included, and wants it back: a field added to acme's types but not to
// the codec fails here instead of being dropped from the store.
func TestEveryFieldKept(t *testing.T) {
	for _, v := range []any{new(acme.Account), new(acme.Order), new(acme.Authorization), new(acme.Certificate)} {
		t.Run(reflect.TypeOf(v).Elem().Name(), func(t *testing.T) {
			n := 0
			fill(t, reflect.ValueOf(v).Elem(), &n)
			raw, err := Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(v).Elem())
			if err := Unmarshal(raw, got.Interface()); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Interface(), v) {
				t.Fatalf("round trip lost a field:\n got %+v\nwant %+v", got.Elem().Interface(), reflect.ValueOf(v).Elem().Interface())
			}
		})
	}
}

// fill gives every field a distinct non-zero value; n makes them distinct.
func fill(t *testing.T, v reflect.Value, n *int) {
	t.Helper()
	*n++
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Unix(int64(1_700_000_000+*n), int64(*n)).UTC()))
		return
	case v.Type() == reflect.TypeFor[*acme.Problem]():
		// A problem is kept as its JSON, which has its own tests.
		v.Set(reflect.ValueOf(&acme.Problem{Type: "urn:ietf:params:acme:error:connection", Detail: fmt.Sprint(*n)}))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint8:
		v.SetUint(uint64(*n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(t, s.Index(i), n)
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i), n)
		}
	default:
		t.Fatalf("fill: no value for a %s; teach the test (and the codec) this kind", v.Type())
	}
}
