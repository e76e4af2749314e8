package record

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/acmed/acmed/acme"
)

// reader takes fields off the front of buf. The first failure sticks in
// err, naming the field, and every later read returns a zero value, so a
// decoder reads all its fields and checks err once.
//
// src is one copy of all of buf, which strings are cut from: a record
// holds a dozen or more, and one allocation for them all made decoding
// 40% faster than one each. A string kept alone keeps that copy alive,
// which is no bigger than the record.
type reader struct {
	buf     []byte
	src     string // buf when reading began; its tail is always buf
	err     error
	version byte // the record's format version
}

func (r *reader) fail(field, format string, args ...any) {
	r.failErr(field, fmt.Errorf(format, args...))
}

// failErr names the field ("" for a list's element, which list names).
func (r *reader) failErr(field string, err error) {
	switch {
	case r.err != nil:
	case field == "":
		r.err = err
	default:
		r.err = fmt.Errorf("%s: %w", field, err)
	}
}

// end rejects trailing bytes: a record they follow was not written by
// Marshal, and keeping it would let two encodings stand for one record.
func (r *reader) end() {
	if r.err == nil && len(r.buf) > 0 {
		r.err = fmt.Errorf("%d trailing bytes", len(r.buf))
	}
}

func (r *reader) uvarint(field string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if !r.varintOK(field, n) {
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) varint(field string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.buf)
	if !r.varintOK(field, n) {
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// varintOK checks what binary.(U)varint read: a final byte of 0 after
// others adds nothing to the value, and Marshal never writes one.
func (r *reader) varintOK(field string, n int) bool {
	switch {
	case n == 0:
		r.fail(field, "truncated varint")
	case n < 0:
		r.fail(field, "varint overflows 64 bits")
	case n > 1 && r.buf[n-1] == 0:
		r.fail(field, "varint not in its shortest form")
	default:
		return true
	}
	return false
}

func (r *reader) byte(field string) byte {
	if r.err != nil {
		return 0
	}
	if len(r.buf) == 0 {
		r.fail(field, "truncated")
		return 0
	}
	b := r.buf[0]
	r.buf = r.buf[1:]
	return b
}

// take returns the next length-prefixed bytes, still in buf.
func (r *reader) take(field string) []byte {
	n := r.uvarint(field)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.buf)) {
		r.fail(field, "length %d exceeds the %d bytes left", n, len(r.buf))
		return nil
	}
	p := r.buf[:n]
	r.buf = r.buf[n:]
	return p
}

// count reads a slice's length, which must fit in the bytes left given
// that each element takes at least minSize of them, so corrupt input
// cannot make the decoder allocate more than it could describe.
func (r *reader) count(field string, minSize int) int {
	n := r.uvarint(field)
	if r.err != nil {
		return 0
	}
	if n > uint64(len(r.buf)/minSize) {
		r.fail(field, "count %d cannot fit in the %d bytes left", n, len(r.buf))
		return 0
	}
	return int(n)
}

func (r *reader) str(field string) string {
	p := r.take(field) // the bytes just before buf's tail in src
	end := len(r.src) - len(r.buf)
	return r.src[end-len(p) : end]
}

// bytes copies, and returns nil for none, as a record held nil or empty.
func (r *reader) bytes(field string) []byte {
	p := r.take(field)
	if len(p) == 0 {
		return nil
	}
	return bytes.Clone(p)
}

func (r *reader) bool(field string) bool {
	switch b := r.byte(field); b {
	case 0:
		return false
	case 1:
		return true
	default:
		r.fail(field, "bool byte %d, want 0 or 1", b)
		return false
	}
}

func (r *reader) int(field string) int {
	v := r.varint(field)
	if v < math.MinInt || v > math.MaxInt {
		r.fail(field, "%d overflows int", v)
		return 0
	}
	return int(v)
}

func (r *reader) time(field string) time.Time {
	switch b := r.byte(field); b {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.fail(field, "time flag %d, want 0 or 1", b)
		return time.Time{}
	}
	sec := r.varint(field)
	nsec := r.uvarint(field)
	if r.err != nil {
		return time.Time{}
	}
	if nsec >= uint64(time.Second) {
		r.fail(field, "%d nanoseconds, want under a second", nsec)
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		r.fail(field, "the zero time in long form")
		return time.Time{}
	}
	return t
}

// Fewest bytes an element takes, for count: a string its length, an
// identifier two lengths, a challenge four lengths, two time flags and a
// problem length.
const (
	minString           = 1
	minIdentifier       = 2
	minChallenge        = 7
	minValidationRecord = 6
	minQuery            = 3
)

// list reads a slice whose elements elem reads; an error names the
// element by its index.
func list[T any](r *reader, field string, minSize int, elem func(*reader) T) []T {
	n := r.count(field, minSize)
	if n == 0 {
		return nil
	}
	out := make([]T, n)
	for i := range out {
		out[i] = elem(r)
		if r.err != nil {
			r.err = fmt.Errorf("%s[%d]: %w", field, i, r.err)
			return nil
		}
	}
	return out
}

func readString(r *reader) string { return r.str("") }

func readIdentifier(r *reader) acme.Identifier {
	var id acme.Identifier
	id.Type = acme.IdentifierType(r.str("Type"))
	id.Value = r.str("Value")
	return id
}

func (r *reader) problem(field string) *acme.Problem {
	j := r.take(field)
	if len(j) == 0 {
		return nil
	}
	p := new(acme.Problem)
	if err := json.Unmarshal(j, p); err != nil {
		r.failErr(field, err)
		return nil
	}
	tidyProblem(p)
	return p
}

// tidyProblem makes empty lists nil, as JSON's omitempty would write them,
// so a decoded problem re-encodes to what decodes equal.
func tidyProblem(p *acme.Problem) {
	if p == nil {
		return
	}
	if len(p.Algorithms) == 0 {
		p.Algorithms = nil
	}
	if len(p.Subproblems) == 0 {
		p.Subproblems = nil
	}
	for _, sp := range p.Subproblems {
		tidyProblem(sp)
	}
}
