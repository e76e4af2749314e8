package record_test

import (
	"encoding/json"
	"testing"

	"github.com/acmed/acmed/acme"
	"github.com/acmed/acmed/storage/record"
)

// BenchmarkRecord compares the binary codec with the encoding/json the
// stores used before, on the records every issuance writes and reads most.
func BenchmarkRecord(b *testing.B) {
	order := fullOrder()
	order.Status, order.Error = acme.StatusProcessing, nil // as finalization leaves it, with its CSR
	order.CSR = make([]byte, 250)
	codecs := []struct {
		name      string
		marshal   func(any) ([]byte, error)
		unmarshal func([]byte, any) error
	}{
		{"binary", record.Marshal, record.Unmarshal},
		{"json", json.Marshal, json.Unmarshal},
	}
	for _, rec := range []struct {
		name  string
		v     any
		fresh func() any
	}{
		{"authz", threeChallengeAuthz(), func() any { return new(acme.Authorization) }},
		{"order", order, func() any { return new(acme.Order) }},
	} {
		for _, c := range codecs {
			raw, err := c.marshal(rec.v)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(rec.name+"/"+c.name+"/marshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					if _, err := c.marshal(rec.v); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(rec.name+"/"+c.name+"/unmarshal", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					if err := c.unmarshal(raw, rec.fresh()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
