package record

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/acmed/acmed/acme"
)

// Size estimates let Marshal allocate once: a length prefix takes at most
// lenRoom bytes for anything under 2 MiB, a time at most timeRoom.
const (
	lenRoom  = 3
	timeRoom = 1 + binary.MaxVarintLen64 + 5
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendCount(b []byte, n int) []byte {
	return binary.AppendUvarint(b, uint64(n))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendInt(b []byte, v int) []byte {
	return binary.AppendVarint(b, int64(v))
}

// appendTime keeps the instant only: a record's times are compared as
// instants, and the location would make equal records encode differently.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendStrings(b []byte, ss []string) []byte {
	b = appendCount(b, len(ss))
	for _, s := range ss {
		b = appendString(b, s)
	}
	return b
}

func appendIdentifier(b []byte, id acme.Identifier) []byte {
	b = appendString(b, string(id.Type))
	return appendString(b, id.Value)
}

func appendIdentifiers(b []byte, ids []acme.Identifier) []byte {
	b = appendCount(b, len(ids))
	for _, id := range ids {
		b = appendIdentifier(b, id)
	}
	return b
}

func appendProblem(b []byte, p *acme.Problem) ([]byte, error) {
	if p == nil {
		return append(b, 0), nil
	}
	j, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("record: encode problem: %w", err)
	}
	return appendBytes(b, j), nil
}

func stringsSize(ss []string) int {
	n := lenRoom
	for _, s := range ss {
		n += lenRoom + len(s)
	}
	return n
}

func identifiersSize(ids []acme.Identifier) int {
	n := lenRoom
	for _, id := range ids {
		n += 2*lenRoom + len(id.Type) + len(id.Value)
	}
	return n
}

// problemSize leaves room for a typical problem's JSON, which is not known
// until it is encoded.
func problemSize(p *acme.Problem) int {
	if p == nil {
		return 1
	}
	return lenRoom + 64 + len(p.Type) + len(p.Detail)
}
