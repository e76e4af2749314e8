// Package audit keeps acmed's hash-chained audit log: one JSON object a
// line, each naming the SHA-256 of the line before it, so that editing,
// deleting or reordering any record but the last breaks the chain where
// it was done, and `acmed admin audit verify` names that line from the
// file alone.
//
// A record (format version 1) is, with its fields in this order:
//
//	{"v":1,"seq":7,"time":"2025-01-02T03:04:05.123456789Z","replica":"ca-1",
//	 "event":"certificate.issue","actor":{"kind":"account","id":"…"},
//	 "subject":{"kind":"certificate","id":"0a1b…"},"details":{…},"prev":"<64 hex>"}
//
// seq counts from 1 in each chain; prev is the lower-case hex SHA-256 of
// the previous line's exact bytes without its newline (64 zeros in the
// first record). A line never holds a raw newline (JSON escapes it), so a
// line's bytes are unambiguous. Each replica keeps its own chain in a
// file of its own, and names itself in every record.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Version is the record format written.
const Version = 1

// TimeFormat is RFC 3339 in UTC with nanoseconds always written, so that
// records sort as text.
const TimeFormat = "2006-01-02T15:04:05.000000000Z"

// zeroHash is prev in a chain's first record.
var zeroHash = [sha256.Size]byte{}

// Party is who acted, or what was acted on: Kind is one of the Kind
// constants, ID its name (an account ID, an EAB key ID, a serial…).
type Party struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// Kinds of actor.
const (
	KindAccount = "account"
	KindEAB     = "eab"
	KindAdmin   = "admin"           // an admin API caller, as it authenticated
	KindCertKey = "certificate-key" // a request signed by a certificate's own key
	KindSystem  = "system"          // acmed itself (start, stop); ID is the replica
)

// Entry is one event to record.
type Entry struct {
	Time    time.Time // zero: now
	Event   string
	Actor   Party
	Subject *Party // nil: the event is about no one resource
	// Details hold the rest. A value is written as JSON; an error as its
	// text, a time in TimeFormat, a duration as Go prints it, and what
	// JSON cannot encode as fmt prints it.
	Details map[string]any
}

// record is one line, its fields in the documented order.
type record struct {
	V       int                        `json:"v"`
	Seq     uint64                     `json:"seq"`
	Time    string                     `json:"time"`
	Replica string                     `json:"replica"`
	Event   string                     `json:"event"`
	Actor   *Party                     `json:"actor"`
	Subject *Party                     `json:"subject"`
	Details map[string]json.RawMessage `json:"details"`
	Prev    string                     `json:"prev"`
}

// ErrBroken is wrapped by every Append after one that could not be made
// durable: the chain's end is no longer known, so nothing more is written
// to it.
var ErrBroken = errors.New("audit log is broken")

// Log appends records to one chain. Appends are serialized: each record
// is encoded and written whole, in one write, under a lock, and Append
// returns once the record is on disk (fsync). Appends waiting together
// share one fsync (group commit): no timer, no record acknowledged before
// it is durable.
type Log struct {
	name    string // the file, for errors ("-": standard output)
	replica string
	w       io.Writer
	file    *os.File // nil when w cannot be synced or truncated
	unlock  func()   // releases the file lock; nil when none

	mu   sync.Mutex
	seq  uint64
	prev [sha256.Size]byte
	size int64 // bytes of the whole records in the file
	err  error // sticky: see ErrBroken
	// broken is closed when err is first set.
	broken chan struct{}

	syncMu sync.Mutex
	synced uint64 // records known to be on disk
	now    func() time.Time

	closeOnce sync.Once
	closeErr  error
}

// Options open a Log.
type Options struct {
	// Replica names this replica in every record. "" continues under the
	// name the file's last record carries, or Fallback in a new chain.
	Replica  string
	Fallback string
	Now      func() time.Time // nil: time.Now
}

// New starts a chain on w (standard output: nothing to read back, so
// every process starts a chain of its own at seq 1). w is synced after
// each record if it is a regular file.
func New(w io.Writer, o Options) (*Log, error) {
	replica := o.Replica
	if replica == "" {
		replica = o.Fallback
	}
	if err := CheckReplica(replica); err != nil {
		return nil, err
	}
	l := &Log{name: "-", replica: replica, w: w, broken: make(chan struct{}), now: o.Now}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			l.file = f
		}
	}
	if l.now == nil {
		l.now = time.Now
	}
	return l, nil
}

// Open opens or creates the chain file at path and continues its chain
// from its last record, which must be whole and follow the one before it:
// a damaged tail is a *LineError, never a new chain over a broken one.
// The file is locked: a second process (another replica given the same
// file) is refused.
func Open(path string, o Options) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w (each replica keeps its own audit log)", path, err)
	}
	l := &Log{name: path, w: f, file: f, unlock: unlock, broken: make(chan struct{}), now: o.Now}
	if l.now == nil {
		l.now = time.Now
	}
	t, err := readTail(f)
	if err != nil {
		l.Close()
		var le *LineError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%s: %w: the chain cannot be continued (acmed admin audit verify %s shows where it breaks; move the file aside to start a new chain)", path, err, path)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	l.replica = o.Replica
	switch {
	case t.records == 0 && l.replica == "":
		l.replica = o.Fallback
	case t.records > 0 && l.replica == "":
		l.replica = t.replica
	case t.records > 0 && l.replica != t.replica:
		l.Close()
		return nil, fmt.Errorf("%s: line %d was written by replica %q, not %q: each replica keeps its own audit log", path, t.records, t.replica, l.replica)
	}
	if err := CheckReplica(l.replica); err != nil {
		l.Close()
		return nil, err
	}
	l.seq, l.prev, l.size, l.synced = t.seq, t.hash, t.size, t.seq
	return l, nil
}

// CheckReplica checks a replica name: printable, at most 255 bytes.
func CheckReplica(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("replica name %q: want 1 to 255 characters", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("replica name %q: control characters are not allowed", name)
		}
	}
	return nil
}

// Replica is the name the records carry.
func (l *Log) Replica() string { return l.replica }

// Name is the file written ("-": standard output).
func (l *Log) Name() string { return l.name }

// Head is the last record's seq and hash.
func (l *Log) Head() (uint64, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq, hex.EncodeToString(l.prev[:])
}

// Broken is closed once an Append failed in a way that leaves the chain's
// end unknown; Err then says why.
func (l *Log) Broken() <-chan struct{} { return l.broken }

// Err is why the log is broken, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Append writes e as the chain's next record and returns once it is
// durable. ctx is not consulted: a record of something done is written
// even when the request that did it has gone.
func (l *Log) Append(_ context.Context, e Entry) error {
	l.mu.Lock()
	if l.err != nil {
		l.mu.Unlock()
		return l.err
	}
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	line, err := encode(l.seq+1, l.replica, l.prev, e)
	if err != nil {
		l.mu.Unlock()
		return fmt.Errorf("audit %s: %w", e.Event, err)
	}
	line = append(line, '\n')
	n, err := l.w.Write(line)
	if err != nil {
		// A part of the line may be in the file: cut it off, so that the
		// next record follows a whole one; if that fails, the end of the
		// chain is unknown and nothing more may be written.
		if n > 0 && (l.file == nil || l.file.Truncate(l.size) != nil) {
			l.fail(fmt.Errorf("%w: %s: a partial record could not be removed after: %w", ErrBroken, l.name, err))
		}
		l.mu.Unlock()
		return fmt.Errorf("audit %s: %s: %w", e.Event, l.name, err)
	}
	l.seq++
	l.prev = sha256.Sum256(line[:len(line)-1])
	l.size += int64(n)
	seq := l.seq
	l.mu.Unlock()
	return l.sync(seq)
}

// sync makes records up to seq durable. Appends that wrote while an
// fsync ran wait here, and the first of them syncs for all.
func (l *Log) sync(seq uint64) error {
	if l.file == nil {
		return nil
	}
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	if l.synced >= seq {
		return nil
	}
	l.mu.Lock()
	upTo := l.seq
	l.mu.Unlock()
	if err := l.file.Sync(); err != nil {
		// After a failed fsync the kernel may have dropped the pages and
		// a later fsync may succeed without them: the written records
		// cannot be trusted to be there, so the log stops.
		l.mu.Lock()
		l.fail(fmt.Errorf("%w: %s: fsync: %w", ErrBroken, l.name, err))
		err := l.err
		l.mu.Unlock()
		return err
	}
	l.synced = upTo
	return nil
}

// fail makes err sticky; l.mu is held.
func (l *Log) fail(err error) {
	if l.err == nil {
		l.err = err
		close(l.broken)
	}
}

// Close releases the file; closing again does nothing. Standard output
// is left open.
func (l *Log) Close() error {
	if l.name == "-" {
		return nil
	}
	l.closeOnce.Do(func() {
		if l.unlock != nil {
			l.unlock()
		}
		l.closeErr = l.file.Close()
	})
	return l.closeErr
}

// encode is one record without its newline.
func encode(seq uint64, replica string, prev [sha256.Size]byte, e Entry) ([]byte, error) {
	if e.Event == "" {
		return nil, errors.New("an audit record needs an event")
	}
	actor := e.Actor
	if actor.Kind == "" {
		actor = Party{Kind: KindSystem, ID: replica}
	}
	details := make(map[string]json.RawMessage, len(e.Details))
	for k, v := range e.Details {
		details[k] = jsonValue(v)
	}
	return json.Marshal(record{
		V: Version, Seq: seq, Time: e.Time.UTC().Format(TimeFormat), Replica: replica,
		Event: e.Event, Actor: &actor, Subject: e.Subject, Details: details,
		Prev: hex.EncodeToString(prev[:]),
	})
}

// jsonValue is v as a detail: see Entry.Details.
func jsonValue(v any) json.RawMessage {
	switch x := v.(type) {
	case error:
		v = x.Error()
	case time.Time:
		v = x.UTC().Format(TimeFormat)
	case time.Duration:
		v = x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return b
}
