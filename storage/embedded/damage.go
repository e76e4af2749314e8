package embedded

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// ErrDamaged is wrapped by Open's error when the file is not a whole,
// consistent bbolt file: acmed must not run on it (it would crash, or
// silently serve a store that lost what clients were told about).
var ErrDamaged = errors.New("damaged")

// errFault is a panic or memory fault met while reading the file.
var errFault = errors.New("reading the file failed")

// damaged is the one-line error an operator sees, naming the file and what
// can be done about it.
func damaged(path, format string, args ...any) error {
	return fmt.Errorf("embedded store %s is %w (%s): restore it from a backup, or move it aside to start with an empty store",
		path, ErrDamaged, oneLine(fmt.Sprintf(format, args...)))
}

// oneLine folds a detail into one line of bounded length: bbolt's check
// may quote whole keys in hex.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// protect runs fn and turns a panic inside it into an error. bbolt reads
// the file through mmap, so a page past a truncated end faults (SIGBUS)
// instead of returning an error, and a damaged page can make it panic;
// SetPanicOnFault makes the fault a panic in this goroutine, which is
// then recovered. It guards the goroutines that meet the file first or on
// their own: Open, the sweep and the job workers.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", errFault, r)
		}
	}()
	return fn()
}

// The layout of a bbolt (format version 2) meta page: a 16-byte page
// header, then magic, version, page size, flags (4 bytes each), the root
// bucket (page, sequence), the freelist page, the high water mark, the
// transaction ID and an FNV-64a checksum of what precedes it (8 each).
const (
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	metaOffset     = 16
	metaSize       = 64
	noFreelist     = ^uint64(0)
	maxBoltPageLen = 1 << 24
)

type meta struct {
	pageSize             uint64
	root, freelist, pgid uint64
	txid                 uint64
}

// parseMeta reads the meta page at the start of b; ok is false when it is
// not a valid one. bbolt writes it in the machine's byte order.
func parseMeta(b []byte) (m meta, ok bool) {
	if len(b) < metaOffset+metaSize {
		return m, false
	}
	b = b[metaOffset : metaOffset+metaSize]
	e := binary.NativeEndian
	h := fnv.New64a()
	_, _ = h.Write(b[:56])
	if e.Uint32(b[0:]) != boltMagic || e.Uint32(b[4:]) != boltVersion || h.Sum64() != e.Uint64(b[56:]) {
		return m, false
	}
	return meta{
		pageSize: uint64(e.Uint32(b[8:])),
		root:     e.Uint64(b[16:]),
		freelist: e.Uint64(b[32:]),
		pgid:     e.Uint64(b[40:]),
		txid:     e.Uint64(b[48:]),
	}, true
}

// checkFile looks at an existing store file before bbolt maps it: bbolt
// itself takes a zero-length file for a new one and initialises it, and
// maps a truncated one, faulting later on the pages that are gone. It
// reports whether the file existed.
func checkFile(path string) (existed bool, err error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("embedded store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return true, fmt.Errorf("embedded store %s: not a regular file", path)
	}
	size := fi.Size()
	if size == 0 {
		return true, fmt.Errorf("embedded store %s is empty (0 bytes), so it lost everything it held: restore it from a backup, or delete it to start with an empty store", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return true, fmt.Errorf("embedded store: %w", err)
	}
	defer f.Close()
	read := func(off int64) []byte {
		b := make([]byte, metaOffset+metaSize)
		n, err := f.ReadAt(b, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return b[:n]
	}

	// The first meta page names the page size, and so where the second
	// is; if it is damaged, the second is looked for where bbolt would.
	m0, ok0 := parseMeta(read(0))
	var m1 meta
	ok1 := false
	if ok0 {
		m1, ok1 = parseMeta(read(int64(m0.pageSize)))
	} else {
		for ps := int64(1024); ps <= maxBoltPageLen && ps < size && !ok1; ps <<= 1 {
			m1, ok1 = parseMeta(read(ps))
		}
	}
	switch {
	case ok0 && uint64(size) < 2*m0.pageSize:
		return true, damaged(path, "truncated: %d bytes, less than its two meta pages", size)
	case !ok0 && !ok1:
		return true, damaged(path, "not a bbolt file, or both meta pages are damaged")
	case !ok0:
		// bbolt would fall back on the other meta page, silently losing
		// the last write if this one was the newer.
		return true, damaged(path, "meta page 0 is damaged")
	case !ok1:
		return true, damaged(path, "meta page 1 is damaged")
	}
	m := m0
	if m1.txid > m0.txid {
		m = m1
	}
	if m.pageSize < 1024 || m.pageSize > maxBoltPageLen || m.pageSize&(m.pageSize-1) != 0 ||
		m.pgid < 2 || m.root >= m.pgid || (m.freelist >= m.pgid && m.freelist != noFreelist) {
		return true, damaged(path, "its meta page is inconsistent")
	}
	if want := m.pgid * m.pageSize; uint64(size) < want {
		return true, damaged(path, "truncated: %d bytes, but its pages end at byte %d", size, want)
	}
	return true, nil
}

// openBolt opens the file with bbolt, protected: a damaged freelist can
// make bbolt panic or fault while opening. On such a failure the file is
// closed, which releases its lock.
func openBolt(path string, opts bolt.Options) (*bolt.DB, error) {
	var file *os.File
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		file = f
		return f, err
	}
	var db *bolt.DB
	err := protect(func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &opts)
		return err
	})
	if errors.Is(err, errFault) && file != nil {
		_ = file.Close()
	}
	return db, err
}

// verify reads every page the store can reach, under protect (a page past
// the end of the file faults), then lets bbolt check the structure: page
// types, key order, pages reachable once and only once. bbolt's check runs
// in a goroutine of its own, which protect cannot reach, so the pages are
// read here first. Pages carry no checksums: a damaged value inside a
// record is found when the record is read.
func verify(db *bolt.DB) error {
	return db.View(func(tx *bolt.Tx) error {
		err := protect(func() error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return touch(b) })
		})
		if err != nil {
			return err
		}
		// Check's goroutine reads the transaction until it closes the
		// channel, so the channel is drained before the transaction ends.
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		return first
	})
}

// touch reads the last byte of every key and value in b and its nested
// buckets: each lies in one run of pages, so if the last byte is in the
// file all of it is.
func touch(b *bolt.Bucket) error {
	var sink byte
	err := b.ForEach(func(k, v []byte) error {
		if len(k) > 0 {
			sink ^= k[len(k)-1]
		}
		if v == nil {
			if child := b.Bucket(k); child != nil {
				return touch(child)
			}
			return nil
		}
		if len(v) > 0 {
			sink ^= v[len(v)-1]
		}
		return nil
	})
	runtime.KeepAlive(sink) // the reads must happen
	return err
}

// sweepGuarded runs Sweep unless the file has become unreadable since Open
// (truncated or overwritten under the running process). It reads every
// page in a read transaction first: a fault inside a write transaction
// would leave bbolt's writer lock held, as its rollback reads the file
// again, and every later write would wait forever. A fault is logged and
// fails Ping, so /readyz takes the replica out of service; the process
// goes on answering what it can.
func (s *Store) sweepGuarded() {
	err := protect(func() error {
		return s.db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return touch(b) })
		})
	})
	if err != nil {
		err = damaged(s.path, "%v", err)
		s.failed.CompareAndSwap(nil, &err)
		s.log.Error("embedded store: sweep failed", "file", s.path, "err", err)
		return
	}
	if err := protect(func() error { _, err := s.Sweep(context.Background()); return err }); err != nil {
		s.log.Error("embedded store: sweep failed", "file", s.path, "err", err)
	}
}
