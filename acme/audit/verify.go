package audit

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LineError names the first line at which a chain is broken.
type LineError struct {
	Line int // from 1
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

func lineErr(n int, format string, args ...any) *LineError {
	return &LineError{Line: n, Msg: fmt.Sprintf(format, args...)}
}

// Summary describes an intact chain.
type Summary struct {
	Records  int    `json:"records"`
	Replica  string `json:"replica"`
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"` // hex SHA-256 of the last line; "" when empty
}

// Anchor is a record's hash kept elsewhere (e.g. a Summary's LastHash
// copied off the host): a chain whose record Seq does not hash to Hash,
// or that ends before Seq, was cut short or rewritten, which the chain
// alone cannot show for its last records.
type Anchor struct {
	Seq  uint64
	Hash string
}

// Verify reads one chain from r and returns its summary, or a *LineError
// naming the first broken link: a line that is not a whole record, a
// first record that does not start a chain, a seq that does not follow
// the one before, a prev that is not the previous line's hash, a replica
// other than the chain's. anchors, if any, must each hold.
func Verify(r io.Reader, anchors ...Anchor) (Summary, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var c chain
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				return Summary{}, lineErr(n, "truncated: no newline at its end")
			}
			break
		}
		if err != nil {
			return Summary{}, err
		}
		if err := c.next(n, line[:len(line)-1]); err != nil {
			return Summary{}, err
		}
		for _, a := range anchors {
			if a.Seq == c.seq && hex.EncodeToString(c.hash[:]) != a.Hash {
				return Summary{}, lineErr(n, "hash %x is not the anchor's %s for seq %d", c.hash, a.Hash, a.Seq)
			}
		}
	}
	for _, a := range anchors {
		if a.Seq > c.seq {
			return Summary{}, lineErr(c.n, "the chain ends at seq %d, before the anchor's seq %d: records were removed from its end", c.seq, a.Seq)
		}
	}
	return c.summary(), nil
}

// chain checks lines one after another.
type chain struct {
	n       int // the last line checked
	seq     uint64
	hash    [sha256.Size]byte
	replica string
}

// fields is a line as read back; pointers tell a missing field.
type fields struct {
	V       int              `json:"v"`
	Seq     uint64           `json:"seq"`
	Time    string           `json:"time"`
	Replica string           `json:"replica"`
	Event   string           `json:"event"`
	Actor   *Party           `json:"actor"`
	Subject *Party           `json:"subject"`
	Details *json.RawMessage `json:"details"`
	Prev    string           `json:"prev"`
}

// parse checks that line n is one whole record.
func parse(n int, line []byte) (fields, error) {
	var f fields
	if !json.Valid(line) {
		return f, lineErr(n, "not JSON")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return f, lineErr(n, "not an audit record: %v", err)
	}
	switch {
	case f.V != Version:
		return f, lineErr(n, "format version %d, want %d", f.V, Version)
	case f.Seq == 0:
		return f, lineErr(n, "no seq")
	case f.Replica == "":
		return f, lineErr(n, "no replica")
	case f.Event == "":
		return f, lineErr(n, "no event")
	case f.Actor == nil || f.Actor.Kind == "":
		return f, lineErr(n, "no actor")
	case f.Details == nil:
		return f, lineErr(n, "no details")
	}
	if _, err := time.Parse(time.RFC3339Nano, f.Time); err != nil {
		return f, lineErr(n, "time %q is not RFC 3339", f.Time)
	}
	if p, err := hex.DecodeString(f.Prev); err != nil || len(p) != sha256.Size || hex.EncodeToString(p) != f.Prev {
		return f, lineErr(n, "prev %q is not a SHA-256 in lower-case hex", f.Prev)
	}
	return f, nil
}

// next checks line n (without its newline) against the chain so far.
func (c *chain) next(n int, line []byte) error {
	f, err := parse(n, line)
	if err != nil {
		return err
	}
	if c.n == 0 {
		if f.Seq != 1 {
			return lineErr(n, "seq %d, but a chain starts at 1: its first records are missing", f.Seq)
		}
		if f.Prev != hex.EncodeToString(zeroHash[:]) {
			return lineErr(n, "prev is not all zeros, as a chain's first record's is")
		}
	} else {
		if f.Seq != c.seq+1 {
			return lineErr(n, "seq %d after %d", f.Seq, c.seq)
		}
		if f.Prev != hex.EncodeToString(c.hash[:]) {
			return lineErr(n, "prev does not match line %d's hash", c.n)
		}
		if f.Replica != c.replica {
			return lineErr(n, "replica %q in the chain of replica %q", f.Replica, c.replica)
		}
	}
	c.take(n, f, line)
	return nil
}

// prime takes line n as the chain's end without checking how it links to
// the lines before: the tail check at Open reads only the last two.
func (c *chain) prime(n int, line []byte) error {
	f, err := parse(n, line)
	if err != nil {
		return err
	}
	c.take(n, f, line)
	return nil
}

func (c *chain) take(n int, f fields, line []byte) {
	c.n, c.seq, c.replica, c.hash = n, f.Seq, f.Replica, sha256.Sum256(line)
}

func (c *chain) summary() Summary {
	s := Summary{Records: c.n, Replica: c.replica, LastSeq: c.seq}
	if c.n > 0 {
		s.LastHash = hex.EncodeToString(c.hash[:])
	}
	return s
}

// tail is where a chain file ends.
type tail struct {
	records int
	seq     uint64
	hash    [sha256.Size]byte
	replica string
	size    int64
}

// readTail finds the file's last two lines, counting lines on the way
// (a byte scan, no parsing: a large file opens quickly), and checks that
// the last is a whole record that follows the one before it.
func readTail(f *os.File) (tail, error) {
	var t tail
	buf := make([]byte, 64<<10)
	var off int64
	// starts[2] is where the line after the last newline starts; starts[1]
	// and starts[0] the starts of the two lines before it.
	var starts [3]int64
	lines := 0
	for {
		k, err := f.ReadAt(buf, off)
		for i := 0; i < k; i++ {
			if buf[i] == '\n' {
				lines++
				starts = [3]int64{starts[1], starts[2], off + int64(i) + 1}
			}
		}
		off += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return t, err
		}
	}
	t.size = off
	if starts[2] != off {
		return t, lineErr(lines+1, "truncated: no newline at its end")
	}
	if lines == 0 {
		return t, nil
	}
	var c chain
	if lines > 1 {
		before, err := readRange(f, starts[0], starts[1]-1)
		if err != nil {
			return t, err
		}
		if err := c.prime(lines-1, before); err != nil {
			return t, err
		}
	}
	last, err := readRange(f, starts[1], off-1)
	if err != nil {
		return t, err
	}
	if err := c.next(lines, last); err != nil {
		return t, err
	}
	t.records, t.seq, t.hash, t.replica = lines, c.seq, c.hash, c.replica
	return t, nil
}

// readRange reads the bytes from from to to (exclusive).
func readRange(f *os.File, from, to int64) ([]byte, error) {
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, from); err != nil && !(errors.Is(err, io.EOF) && len(b) == 0) {
		return nil, fmt.Errorf("read: %w", err)
	}
	return b, nil
}
