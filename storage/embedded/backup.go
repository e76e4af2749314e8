package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Backup writes a consistent copy of the store as of one read
// transaction, while the store goes on serving (bbolt's Tx.WriteTo: writers
// are not blocked). start is called with the copy's exact size before any
// byte is written, and returns where to write it; so an HTTP handler can
// announce a Content-Length and a reader can tell a cut copy from a whole
// one. It returns the bytes written.
func (s *Store) Backup(ctx context.Context, start func(size int64) (io.Writer, error)) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		w, err := start(tx.Size())
		if err != nil {
			return err
		}
		n, err = tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	return n, err
}

// ctxWriter stops a long copy once its context ends (the client left).
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// CheckBackup checks that path is a whole, consistent store file, with
// the checks Open makes (meta pages, length, every page, bbolt's
// consistency check) and acmed's buckets present, without changing it.
func CheckBackup(path string) error {
	existed, err := checkFile(path)
	if err != nil {
		return err
	}
	if !existed {
		return fmt.Errorf("backup %s: no such file", path)
	}
	db, err := openBolt(path, bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return damaged(path, "%v", err)
	}
	defer db.Close()
	if err := verify(db); err != nil {
		return damaged(path, "%v", err)
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte(bucketAccounts)) == nil {
			return fmt.Errorf("%s is a bbolt file but not an acmed store (no %s bucket)", path, bucketAccounts)
		}
		return nil
	})
}

// Restore replaces the store file at path with the backup at from, once
// the backup passes CheckBackup. It refuses while a running acmed holds
// the store (ErrLocked); the copy is written beside path and renamed over
// it, so a failure leaves the old file as it was.
func Restore(from, path string) error {
	if err := CheckBackup(from); err != nil {
		return err
	}
	if _, err := os.Stat(path); err == nil {
		// bbolt's read-only open takes a shared lock, which a running
		// acmed's exclusive one refuses. A damaged file (the reason for
		// many a restore) fails otherwise and is replaced.
		db, err := openBolt(path, bolt.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("embedded store %s: %w: stop acmed before restoring", path, ErrLocked)
		}
		if err == nil {
			_ = db.Close()
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".restore-*")
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, there is nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return fmt.Errorf("restore: writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("restore: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	// The rename is durable once the directory is.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		dir.Close()
	}
	return nil
}
